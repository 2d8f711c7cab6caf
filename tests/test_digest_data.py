"""The digest's gazetteers and alias tables are JSON data files shipped in the package."""

from __future__ import annotations

import json
from importlib import resources

from extractor.digest import DEFAULT_ALIASES, build_digest
from extractor.digest.tables import _CITIES, _COUNTRIES, _DEMONYMS, _VENUES, DATA_FILES, load_table
from extractor.digest.text import _norm_key
from extractor.models import ArticleResult

SPAN = {"status": "exact", "start": 0, "end": 5}


def test_every_data_file_loads_through_importlib_resources() -> None:
    folder = resources.files("extractor.digest").joinpath("data")
    shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert shipped == sorted(DATA_FILES)
    for name in DATA_FILES:
        data = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        assert data == load_table(name)
        tables = {k: v for k, v in data.items() if not k.startswith("_")}
        assert tables and all(tables.values()), f"{name} has an empty table"


def test_gazetteer_keys_are_lookup_keys() -> None:
    for table in (_COUNTRIES, _DEMONYMS, _CITIES, _VENUES):
        assert all(_norm_key(key) == key for key in table)
    assert set(_VENUES.values()) <= set(_CITIES)


def test_the_alias_data_is_used() -> None:
    assert DEFAULT_ALIASES["Kiev"] == "Kyiv"
    result = ArticleResult.model_validate(
        {
            "article_id": "a",
            "source": "a.txt",
            "sha256": "0" * 64,
            "status": "ok",
            "quotes": [
                {"text": "We stand firm.", "speaker": "Vladimir Zelensky", "cue": None, "span": SPAN},
                {"text": "We hold.", "speaker": "Volodymyr Zelensky", "cue": None, "span": SPAN},
            ],
        }
    )
    people = [e for e in build_digest([result]).entities if e.kind == "person"]
    assert [(p.name, sorted(m.surface for m in p.mentions)) for p in people] == [
        ("Volodymyr Zelensky", ["Vladimir Zelensky", "Volodymyr Zelensky"])
    ]
