"""Write a prepared openml-python cache for one dataset, in OpenML's real file formats.

Layout (openml 0.15): ``<root>/org/openml/www/datasets/<id>/`` with ``description.xml``,
``features.xml``, ``qualities.xml`` and ``dataset_<id>.pq``. The pixels are real data
(scikit-learn's digits, 64 pixel columns, as OpenML's optdigits stores them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NS = 'xmlns:oml="http://openml.org/openml"'


def _description(did: int, name: str) -> str:
    return f"""<oml:data_set_description {NS}>
  <oml:id>{did}</oml:id>
  <oml:name>{name}</oml:name>
  <oml:version>1</oml:version>
  <oml:description>Handwritten digits, 8x8 pixels (test fixture).</oml:description>
  <oml:format>ARFF</oml:format>
  <oml:upload_date>2014-04-06T23:21:22</oml:upload_date>
  <oml:licence>Public</oml:licence>
  <oml:url>https://api.openml.org/data/v1/download/{did}/{name}.arff</oml:url>
  <oml:parquet_url>https://data.openml.org/datasets/0000/{did:04d}/dataset_{did}.pq</oml:parquet_url>
  <oml:file_id>{did}</oml:file_id>
  <oml:default_target_attribute>class</oml:default_target_attribute>
  <oml:visibility>public</oml:visibility>
  <oml:status>active</oml:status>
  <oml:md5_checksum>00000000000000000000000000000000</oml:md5_checksum>
</oml:data_set_description>
"""


def _feature(index: int, name: str, kind: str, target: bool, nominal: list[str]) -> str:
    values = "".join(f"<oml:nominal_value>{v}</oml:nominal_value>" for v in nominal)
    return (f"<oml:feature><oml:index>{index}</oml:index><oml:name>{name}</oml:name>"
            f"<oml:data_type>{kind}</oml:data_type>{values}"
            f"<oml:is_target>{str(target).lower()}</oml:is_target>"
            "<oml:is_ignore>false</oml:is_ignore><oml:is_row_identifier>false</oml:is_row_identifier>"
            "<oml:number_of_missing_values>0</oml:number_of_missing_values></oml:feature>")


def write_openml_cache(root: Path, did: int = 28, n_per_class: int = 5) -> dict:
    """Prepare the cache for dataset ``did``; return what the test should find."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.concatenate([np.flatnonzero(digits.target == c)[:n_per_class] for c in range(10)])
    folder = root / "org" / "openml" / "www" / "datasets" / str(did)
    folder.mkdir(parents=True)
    pixels = digits.data[keep].astype(np.int64)
    frame = pd.DataFrame(pixels, columns=[f"input{i + 1}" for i in range(64)])
    classes = [str(c) for c in range(10)]
    frame["class"] = pd.Categorical(digits.target[keep].astype(str), categories=classes)
    frame.to_parquet(folder / f"dataset_{did}.pq")
    (folder / "description.xml").write_text(_description(did, "optdigits"))
    feats = [_feature(i, f"input{i + 1}", "numeric", False, []) for i in range(64)]
    feats.append(_feature(64, "class", "nominal", True, classes))
    (folder / "features.xml").write_text(f"<oml:data_features {NS}>\n" + "\n".join(feats)
                                         + "\n</oml:data_features>\n")
    qualities = {"NumberOfInstances": float(len(keep)), "NumberOfClasses": 10.0,
                 "NumberOfFeatures": 65.0, "MajorityClassSize": float(n_per_class)}
    (folder / "qualities.xml").write_text(
        f"<oml:data_qualities {NS}>\n" + "".join(
            f"<oml:quality><oml:name>{k}</oml:name><oml:value>{v}</oml:value></oml:quality>\n"
            for k, v in qualities.items()) + "</oml:data_qualities>\n")
    return {"images": (digits.images[keep] / 16.0), "labels": digits.target[keep],
            "qualities": qualities}
