"""Feature specs on user tables: missing columns, unknown categories, NaN rule, bad values."""

import json

import numpy as np
import pytest

from training import datasets
from training.errors import FeatureSpecError, MissingColumnError
from training.features import FeatureSpec

SPEC = {
    "label": "bought",
    "features": [
        {"name": "price", "type": "numeric"},
        {"name": "clicks", "type": "numeric", "transform": "log1p", "nan": "zero"},
        {"name": "city", "type": "categorical"},
        {"name": "device", "type": "categorical", "vocabulary": ["phone", "desktop"]},
    ],
    "crosses": [["city", "device"]],
}


def _table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "oslo", "rome"], n).astype(object)
    return {
        "price": rng.normal(50, 10, n),
        "clicks": rng.integers(0, 20, n).astype(np.float64),
        "city": city,
        "device": rng.choice(["phone", "desktop"], n).astype(object),
        "bought": np.where(rng.random(n) < 0.4, "yes", "no").astype(object),
    }


def test_missing_column_is_named():
    table = _table()
    del table["city"]
    spec = FeatureSpec.from_dict(SPEC)
    with pytest.raises(MissingColumnError) as err:
        spec.fit(table)
    assert "'city'" in str(err.value) and "price" in str(err.value)  # names the missing and the present columns


def test_unknown_category_goes_to_the_oov_bucket():
    spec = FeatureSpec.from_dict(SPEC).fit(_table())
    city = spec.feature("city")
    assert sorted(city.vocabulary) == ["oslo", "paris", "rome"] and city.oov_index == 3
    table = _table(4)
    table["city"] = np.array(["paris", "berlin", None, " oslo "], dtype=object)
    table["device"] = np.array(["phone", "tablet", "desktop", "phone"], dtype=object)
    enc = spec.encode(table)
    assert enc["city"].ravel().tolist() == [city.vocabulary.index("paris"), 3, 3, city.vocabulary.index("oslo")]
    assert enc["device"].ravel().tolist() == [0, 2, 1, 0]  # declared vocabulary order; 'tablet' -> OOV 2


def test_nan_rules_mean_zero_and_error():
    spec = FeatureSpec.from_dict(SPEC).fit(_table())
    price, clicks = spec.feature("price"), spec.feature("clicks")
    table = _table(3)
    table["price"] = np.array([np.nan, 60.0, np.nan])
    table["clicks"] = np.array([np.nan, 3.0, np.inf])
    enc = spec.encode(table)
    # 'mean': missing -> the training mean -> exactly 0 after standardisation
    assert enc["price"].ravel()[[0, 2]].tolist() == [0.0, 0.0]
    assert enc["price"].ravel()[1] == pytest.approx((60 - price.mean) / price.std, rel=1e-5)
    # 'zero': missing -> raw 0 -> log1p(0) = 0 -> standardised
    assert enc["clicks"].ravel()[0] == pytest.approx((0 - clicks.mean) / clicks.std, rel=1e-5)
    strict = dict(SPEC, features=[dict(SPEC["features"][0], nan="error")] + SPEC["features"][1:])
    strict_spec = FeatureSpec.from_dict(strict).fit(_table())
    with pytest.raises(FeatureSpecError, match=r"'price' has 2 missing/NaN.*row 0"):
        strict_spec.encode(table)


def test_non_numeric_value_in_numeric_column_is_an_error_naming_row_and_value():
    table = _table(5)
    table["price"] = np.array(["1.5", "?", "", "cheap", "2"], dtype=object)
    spec = FeatureSpec.from_dict(SPEC).fit(_table())
    with pytest.raises(FeatureSpecError, match=r"'price' row 3.*'cheap'"):
        spec.encode(table)
    table["price"][3] = "NA"
    assert spec.encode(table)["price"].ravel()[1:4].tolist() == [0.0, 0.0, 0.0]  # '?', '', 'NA' are missing


def test_malformed_specs_say_what_was_expected():
    with pytest.raises(FeatureSpecError, match="label"):
        FeatureSpec.from_dict({"features": SPEC["features"]})
    with pytest.raises(FeatureSpecError, match="expected type 'numeric' or 'categorical', got 'text'"):
        FeatureSpec.from_dict({"label": "y", "features": [{"name": "a", "type": "text"}]})
    with pytest.raises(FeatureSpecError, match="not a categorical feature"):
        FeatureSpec.from_dict(dict(SPEC, crosses=[["price", "city"]]))
    with pytest.raises(FeatureSpecError, match="transform"):
        FeatureSpec.from_dict({"label": "y", "features": [{"name": "a", "type": "numeric", "transform": "sqrt"}]})


def test_csv_with_spec_file_end_to_end(tmp_path):
    table = _table(300)
    lines = ["price,clicks,city,device,bought"]
    for i in range(300):
        price = "" if i % 50 == 0 else f"{table['price'][i]:.2f}"  # some missing prices
        lines.append(f"{price},{int(table['clicks'][i])},{table['city'][i]},{table['device'][i]},{table['bought'][i]}")
    csv = tmp_path / "shop.csv"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FeatureSpecError, match="shop.features.json"):
        datasets.load(csv)
    (tmp_path / "shop.features.json").write_text(json.dumps(SPEC))
    d = datasets.load(csv)
    assert d.task == "tabular" and d.labels == ["no", "yes"] and d.num_classes == 2
    assert d.size("train") + d.size("val") + d.size("test") == 300
    assert set(d.x_train) == {"price", "clicks", "city", "device"}
    assert np.isfinite(d.x_train["price"]).all()
    assert [f["name"] for f in d.preprocessing["features"]] == ["price", "clicks", "city", "device"]
    # the fitted spec round-trips through JSON (it goes into TFRecord datasets and manifests)
    again = FeatureSpec.from_dict(json.loads(json.dumps(d.feature_spec.to_dict())))
    assert again.fitted
    np.testing.assert_array_equal(again.encode(table)["city"], d.feature_spec.encode(table)["city"])


def test_parquet_missing_label_column_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _table(50)
    del table["bought"]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({k: list(v) for k, v in table.items()}), path)
    with pytest.raises(MissingColumnError, match="'bought'"):
        datasets.load(path, feature_spec=SPEC)
