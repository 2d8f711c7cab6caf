
(()=>{const $=s=>[...document.querySelectorAll(s)];const arts=$('section.art'),rows=$('#toc tbody tr'),
q=document.getElementById('q'),k=document.getElementById('k'),n=document.getElementById('n');
const fold=s=>s.normalize('NFD').replace(/[\u0300-\u036f]/g,'').toLowerCase();let keys=null;
function key(a){const t=a.querySelector('.txt');return fold(a.dataset.s+'\n'+(t?t.textContent:''));}
function filt(){const w=fold(q.value).split(/\s+/).filter(Boolean),f=k.value;if(w.length&&!keys)
keys=arts.map(key);let c=0;arts.forEach((a,i)=>{
const h=!!((w.length&&!w.every(x=>keys[i].includes(x)))||(f&&!a.dataset.f.includes(f)));a.hidden=h;
if(rows[i])rows[i].hidden=h;if(!h)c++;});n.textContent=c+' of '+arts.length+' articles shown';}
q.addEventListener('input',filt);k.addEventListener('change',filt);
function go(){const id=decodeURIComponent(location.hash.slice(1)),t=id&&document.getElementById(id);
if(!t)return;const d=t.closest('details')||t.querySelector('details');if(d)d.open=true;t.scrollIntoView();}
window.addEventListener('hashchange',go);go();
document.addEventListener('click',e=>{const a=e.target.closest('a[data-step]');if(!a)return;
e.preventDefault();const s=+a.dataset.step;for(let j=arts.indexOf(a.closest('section.art'))+s;
j>=0&&j<arts.length;j+=s){if(!arts[j].hidden){location.hash=arts[j].id;return;}}});
document.getElementById('ex').addEventListener('click',()=>arts.forEach(a=>{
if(!a.hidden)a.querySelectorAll('details').forEach(d=>d.open=true);}));
document.getElementById('co').addEventListener('click',()=>$('section.art details').forEach(d=>d.open=false));
filt();})();
