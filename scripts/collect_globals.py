"""Regenerate benign model files from real libraries and show what the scanner flags in them.

The scanner decides pickle globals by allowlist (``src/pipewarden/scan/_allowlist``),
so every global that ordinary model files reference must be listed. This script
builds such files with the libraries installed here (numpy, pandas, scipy,
scikit-learn, joblib, LightGBM, XGBoost, PyTorch, transformers, Keras,
TensorFlow), in every pickle protocol where that matters, scans each one with
pipewarden and prints:

- every global referenced that is not on the allowlist (PW-SCAN-101/102), with
  the first file that referenced it;
- every other finding at or above ``--fail-on`` (a scanner problem, not a
  missing entry);
- Keras classes and TensorFlow ops that the installed libraries export or emit
  and that the ``.list`` files do not name.

Libraries that are not installed are skipped and named. Exit 0 when nothing
is missing, 1 otherwise. Re-run it after upgrading any of these libraries:

    python scripts/collect_globals.py
    python scripts/collect_globals.py --only numpy,torch --keep /tmp/samples
    python scripts/collect_globals.py --all      # also list every global seen
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import io
import os
import pickle
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Keras 3 needs a backend; TensorFlow's own if it is here, else PyTorch.
os.environ.setdefault("KERAS_BACKEND", "tensorflow" if importlib.util.find_spec("tensorflow") else "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROTOCOLS = range(6)
Builder = Callable[[Path], Iterator[Path]]


# -- helpers --------------------------------------------------------------------------


def _dump(dest: Path, stem: str, obj: Any, protocols: Iterator[int] | range = PROTOCOLS) -> Iterator[Path]:
    """Write `obj` with pickle in each protocol; skip protocols it cannot be written in."""
    for proto in protocols:
        path = dest / f"{stem}.p{proto}.pkl"
        try:
            data = pickle.dumps(obj, protocol=proto)
        except Exception as exc:
            print(f"  note: {stem} cannot be pickled with protocol {proto}: {exc!r:.120}")
            continue
        path.write_bytes(data)
        yield path


def _joblib(dest: Path, stem: str, obj: Any, compresses: tuple[Any, ...] = (0,)) -> Iterator[Path]:
    try:
        import joblib
    except ImportError:
        print(f"  note: joblib is not installed: {stem} not written with joblib")
        return
    for compress in compresses:
        tag = compress if isinstance(compress, int) else "-".join(map(str, compress))
        path = dest / f"{stem}.c{tag}.joblib"
        joblib.dump(obj, path, compress=compress)
        yield path


# -- numpy ----------------------------------------------------------------------------


def numpy_objects() -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    objs: dict[str, Any] = {}
    for code in (
        "?",
        "b",
        "B",
        "h",
        "H",
        "i",
        "I",
        "l",
        "L",
        "q",
        "Q",
        "e",
        "f",
        "d",
        "g",
        "F",
        "D",
        "G",
        "M8[ns]",
        "M8[D]",
        "m8[s]",
        "U3",
        "S3",
        "V4",
        ">i4",
        "<f8",
    ):
        tag = code.replace("?", "bool").replace("[", "_").replace("]", "")
        objs[f"dtype_{tag.replace('>', 'be').replace('<', 'le')}"] = np.zeros(3, dtype=code)
    objs["structured"] = np.zeros(3, dtype=[("x", "<f4"), ("y", "<i8", (2,)), ("name", "U5")])
    objs["nested_structured"] = np.zeros(2, dtype=[("a", [("b", "f4"), ("c", "i1")]), ("d", "O")])
    objs["aligned_structured"] = np.zeros(2, dtype=np.dtype([("a", "i1"), ("b", "f8")], align=True))
    objs["object"] = np.array(["a", 1, None, 2.5, (1, 2)], dtype=object)
    objs["fortran"] = np.asfortranarray(rng.random((3, 4)))
    objs["zero_d"] = np.array(3.0)
    objs["empty"] = np.empty((0, 3))
    objs["big"] = np.arange(20000.0).reshape(200, 100)
    objs["strided"] = np.arange(20)[::2]
    objs["matrix"] = np.matrix([[1, 2], [3, 4]])
    objs["recarray"] = np.rec.fromrecords([(1, "a"), (2, "b")], names="x,y")
    objs["record"] = objs["recarray"][0]
    objs["masked"] = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-1.0)
    objs["masked_structured"] = np.ma.array(np.zeros(2, dtype=[("a", "i4")]), mask=[(True,), (False,)])
    objs["masked_constant"] = np.ma.masked
    objs["scalars"] = [
        np.float64(1.5),
        np.float32(1.5),
        np.float16(1.5),
        np.longdouble(1.5),
        np.int8(1),
        np.int64(1),
        np.uint8(1),
        np.uint64(1),
        np.bool_(True),
        np.str_("x"),
        np.bytes_(b"x"),
        np.datetime64("2024-01-01T10:00"),
        np.timedelta64(3, "D"),
        np.complex64(1j),
        np.complex128(1j),
        np.clongdouble(1j),
        np.void(b"ab"),
        objs["structured"][0],
    ]
    objs["dtypes"] = [np.dtype(c) for c in ("f8", "i4", "M8[ns]", "U4", "O", "V3")] + [
        objs["structured"].dtype,
        objs["aligned_structured"].dtype,
    ]
    objs["dtype_classes"] = [type(np.dtype(c)) for c in ("f8", "i4", "M8[ns]", "U4", "O", "V3", "?")]
    objs["scalar_types"] = [
        np.float64,
        np.float32,
        np.int64,
        np.int32,
        np.bool_,
        np.str_,
        np.object_,
    ]
    objs["ufuncs"] = [np.log1p, np.exp, np.sqrt, np.add, np.expm1, np.abs]
    if hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType"):
        objs["stringdtype"] = np.array(["a", "bc"], dtype=np.dtypes.StringDType())
    objs["random_state"] = np.random.RandomState(0)
    objs["legacy_state"] = np.random.RandomState(0).get_state()
    objs["generator"] = np.random.default_rng(0)
    objs["bit_generators"] = [
        np.random.MT19937(0),
        np.random.PCG64(0),
        np.random.PCG64DXSM(0),
        np.random.Philox(0),
        np.random.SFC64(0),
    ]
    objs["generators"] = [np.random.Generator(b) for b in objs["bit_generators"]]
    objs["seed_sequence"] = np.random.SeedSequence(0)
    objs["finfo_values"] = {"eps": np.finfo(np.float32).eps, "max": np.iinfo(np.int16).max}
    return objs


def build_numpy(dest: Path) -> Iterator[Path]:
    import numpy as np

    for stem, obj in numpy_objects().items():
        yield from _dump(dest, f"numpy_{stem}", obj)
    objs = numpy_objects()
    string_arrays = {k: objs.pop(k) for k in ("stringdtype",) if k in objs}
    yield from _joblib(dest, "numpy_all", objs, (0, 3))
    if string_arrays:
        yield from _joblib(dest, "numpy_gap_stringdtype", string_arrays, (0,))
    path = dest / "numpy_plain.npy"
    np.save(path, np.arange(10.0))
    yield path
    path = dest / "numpy_arrays.npz"
    np.savez_compressed(path, a=np.arange(3), b=np.ones((2, 2), dtype="f4"))
    yield path


# -- pandas ---------------------------------------------------------------------------


def pandas_objects() -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    n = 6
    idx = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")
    df = pd.DataFrame(
        {
            "i": np.arange(n),
            "f": np.linspace(0, 1, n),
            "b": [True, False] * 3,
            "o": ["a", "b", None, "d", "e", "f"],
            "cat": pd.Categorical(list("xyzxyz"), categories=list("zyx"), ordered=True),
            "dt": pd.date_range("2024-01-01", periods=n, freq="h"),
            "dt_tz": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "td": pd.to_timedelta(np.arange(n), unit="s"),
            "period": pd.period_range("2024-01", periods=n, freq="M"),
            "interval": pd.interval_range(0, n),
            "sparse": pd.arrays.SparseArray([0, 0, 1, 0, 2, 0]),
            "Int64": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "Float64": pd.array([1.0, None, 3, 4, 5, 6], dtype="Float64"),
            "boolean": pd.array([True, None, False, True, True, False], dtype="boolean"),
            "string": pd.array(["a", None, "c", "d", "e", "f"], dtype="string"),
            "string_py": pd.array(["a", None, "c", "d", "e", "f"], dtype=pd.StringDtype("python")),
            "UInt8": pd.array([1, 2, 3, 4, 5, None], dtype="UInt8"),
        },
        index=pd.RangeIndex(n, name="row"),
    )
    objs: dict[str, Any] = {"frame": df, "frame_attrs": df.assign(z=1)}
    objs["frame_attrs"].attrs["source"] = "unit"
    objs["series"] = pd.Series([1.0, 2.0], index=["a", "b"], name="s")
    objs["multiindex"] = pd.DataFrame(
        {"v": range(4)}, index=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
    )
    objs["indexes"] = [
        pd.Index([1, 2]),
        pd.Index(["a"]),
        pd.RangeIndex(3),
        idx,
        pd.DatetimeIndex(["2024-01-01"]),
        pd.TimedeltaIndex(["1 day"]),
        pd.period_range("2024", periods=2, freq="Y"),
        pd.CategoricalIndex(["a", "b"]),
        pd.interval_range(0, 2),
        pd.Index([1.5]),
        pd.Index([True, False]),
        pd.Index(pd.array([1, None], dtype="Int64")),
    ]
    objs["scalars"] = [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-01-01"),
        pd.Timedelta("1h"),
        pd.Period("2024-01", freq="M"),
        pd.Interval(0, 1, closed="left"),
        pd.NaT,
        pd.NA,
    ]
    objs["offsets"] = [
        pd.offsets.Day(2),
        pd.offsets.Hour(),
        pd.offsets.MonthEnd(),
        pd.offsets.BusinessDay(),
        pd.offsets.Week(weekday=0),
        pd.offsets.YearBegin(),
        pd.offsets.QuarterEnd(startingMonth=3),
        pd.DateOffset(months=1),
        pd.offsets.Minute(5),
        pd.offsets.Second(),
        pd.offsets.Milli(),
        pd.offsets.MonthBegin(),
        pd.offsets.YearEnd(),
        pd.offsets.BusinessMonthEnd(),
        pd.offsets.CustomBusinessDay(),
        pd.offsets.Nano(),
        pd.offsets.Micro(),
        pd.offsets.Easter(),
    ]
    objs["dtypes"] = [
        pd.CategoricalDtype(["a"]),
        pd.DatetimeTZDtype(tz="UTC"),
        pd.PeriodDtype("D"),
        pd.IntervalDtype("int64"),
        pd.SparseDtype("float64"),
        pd.Int64Dtype(),
        pd.Float32Dtype(),
        pd.BooleanDtype(),
        pd.StringDtype(),
    ]
    objs["categorical"] = pd.Categorical(["a", "b", "a"])
    objs["gap_zoneinfo"] = pd.Series(pd.date_range("2024-01-01", periods=3, freq="D", tz="Europe/Berlin"))
    try:
        import pyarrow
    except ImportError:
        pass
    else:
        objs["arrow"] = pd.DataFrame(
            {
                "s": pd.array(["a", "b"], dtype="string[pyarrow]"),
                "i": pd.array([1, None], dtype="int64[pyarrow]"),
                "f": pd.array([1.5, None], dtype="double[pyarrow]"),
                "ts": pd.array([pd.Timestamp("2024-01-01"), None], dtype="timestamp[ns][pyarrow]"),
                "b": pd.array([True, None], dtype="bool[pyarrow]"),
                "ts_tz": pd.array(
                    [pd.Timestamp("2024-01-01", tz="UTC"), None],
                    dtype=pd.ArrowDtype(pyarrow.timestamp("us", tz="UTC")),
                ),
                "d": pd.array([None, None], dtype=pd.ArrowDtype(pyarrow.date32())),
                "dur": pd.array([None, None], dtype=pd.ArrowDtype(pyarrow.duration("s"))),
                "dec": pd.array([None, None], dtype=pd.ArrowDtype(pyarrow.decimal128(5, 2))),
                "lst": pd.array([[1, 2], None], dtype=pd.ArrowDtype(pyarrow.list_(pyarrow.int32()))),
                "st": pd.array(
                    [{"a": 1}, None], dtype=pd.ArrowDtype(pyarrow.struct([("a", pyarrow.int64())]))
                ),
                "dic": pd.array(
                    ["x", "y"], dtype=pd.ArrowDtype(pyarrow.dictionary(pyarrow.int8(), pyarrow.string()))
                ),
                "bin": pd.array([b"x", None], dtype=pd.ArrowDtype(pyarrow.binary())),
                "ls": pd.array(["x", None], dtype=pd.ArrowDtype(pyarrow.large_string())),
                "f16": pd.array([1.0, None], dtype="float[pyarrow]"),
                "u8": pd.array([1, None], dtype="uint8[pyarrow]"),
            }
        )
        objs["str_default"] = pd.Series(["a", "b"], dtype="str")
    return objs


def build_pandas(dest: Path) -> Iterator[Path]:
    import pandas as pd

    objs = pandas_objects()
    for stem, obj in objs.items():
        yield from _dump(dest, f"pandas_{stem}", obj)
    for suffix in ("pkl", "pkl.gz", "pkl.bz2", "pkl.xz"):
        path = dest / f"pandas_to_pickle.{suffix}"
        pd.to_pickle(objs["frame"], path)
        yield path
    yield from _joblib(dest, "pandas_frame", objs["frame"], (0, 3))


# -- scipy ----------------------------------------------------------------------------


def scipy_objects() -> dict[str, Any]:
    import numpy as np
    from scipy import interpolate, optimize, sparse, spatial, stats

    dense = np.array([[0, 1.0, 0], [2, 0, 3]])
    objs: dict[str, Any] = {}
    for fmt in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia"):
        objs[f"sparse_{fmt}_matrix"] = getattr(sparse, f"{fmt}_matrix")(dense)
        if hasattr(sparse, f"{fmt}_array"):
            objs[f"sparse_{fmt}_array"] = getattr(sparse, f"{fmt}_array")(dense)
    objs["sparse_int"] = sparse.csr_matrix(np.eye(3, dtype=np.int32))
    objs["gap_stats_frozen"] = [
        stats.norm(0, 1),
        stats.gamma(2.0),
        stats.beta(2, 3),
        stats.uniform(0, 1),
        stats.poisson(3),
        stats.binom(10, 0.3),
        stats.lognorm(0.5),
        stats.expon(),
        stats.t(5),
        stats.multivariate_normal([0, 0], np.eye(2)),
    ]
    objs["kdtree"] = spatial.KDTree(np.random.default_rng(0).random((20, 2)))
    objs["ckdtree"] = spatial.cKDTree(np.random.default_rng(0).random((20, 2)))
    objs["rotation"] = spatial.transform.Rotation.from_euler("z", 30, degrees=True)
    objs["optimize_result"] = optimize.minimize(lambda x: (x**2).sum(), np.ones(2))
    objs["optimize_result"].pop("jac", None)
    objs["bspline"] = interpolate.make_interp_spline(np.arange(6.0), np.arange(6.0) ** 2)
    objs["ppoly"] = interpolate.CubicSpline(np.arange(5.0), np.arange(5.0) ** 2)
    grid = np.arange(6.0)
    objs["interpolators"] = [
        interpolate.PchipInterpolator(grid, grid**2),
        interpolate.Akima1DInterpolator(grid, grid**2),
        interpolate.UnivariateSpline(grid, grid**2),
        interpolate.RegularGridInterpolator((grid,), grid**2),
        interpolate.PPoly(np.ones((2, 1)), np.array([0.0, 1.0])),
        interpolate.BPoly(np.ones((2, 1)), [0.0, 1.0]),
    ]
    return objs


def build_scipy(dest: Path) -> Iterator[Path]:
    objs = scipy_objects()
    for stem, obj in objs.items():
        yield from _dump(dest, f"scipy_{stem}", obj)
    yield from _joblib(dest, "scipy_sparse", {k: v for k, v in objs.items() if "sparse" in k}, (0, 3))


# -- scikit-learn ---------------------------------------------------------------------


def _sklearn_data() -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(60, 4))) + 0.1
    y = np.array([0, 1, 2] * 20)
    return {
        "X": x,
        "y_cls": y,
        "y_bin": y % 2,
        "y_reg": x @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(size=60),
        "Y_multi": np.stack([y % 2, (y + 1) % 2, y // 2], axis=1),
        "Y_reg2": np.stack([x[:, 0], x[:, 1] * 2], axis=1),
        "text": [
            f"doc {i} about {w} and {v}"
            for i, (w, v) in enumerate(zip(["cats", "dogs", "birds"] * 20, ["red", "blue"] * 30, strict=True))
        ],
        "X_int": rng.integers(0, 4, size=(60, 4)),
        "dicts": [{"a": float(i), "b": "x" if i % 2 else "y"} for i in range(60)],
        "y_pos": np.abs(x @ np.array([1.0, 2.0, 0.5, 3.0])) + 0.1,
        "X_square": x @ x.T,
    }


def _sklearn_params(name: str, cls: type, kind: str) -> dict[str, Any] | None:
    """Arguments for estimators whose constructor has required parameters."""
    data = _sklearn_data()
    from sklearn.base import clone
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    reg = kind == "regressor"
    base: Any = LinearRegression() if reg else LogisticRegression(max_iter=200)
    tree: Any = DecisionTreeRegressor(max_depth=2) if reg else DecisionTreeClassifier(max_depth=2)
    params: dict[str, Any] = {}
    sig = inspect.signature(cls.__init__)
    for pname, p in sig.parameters.items():
        if pname == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if name == "FrozenEstimator" and pname == "estimator":
            params[pname] = clone(base).fit(data["X"], data["y_reg"] if reg else data["y_cls"])
            continue
        if pname in ("estimator", "base_estimator") and p.default is None:
            params[pname] = base
            continue
        if pname == "n_components" and name.endswith("RandomProjection"):
            params[pname] = 2
            continue
        if pname == "dictionary":
            params[pname] = data["X"][:3]
            continue
        if p.default is not p.empty:
            continue
        if pname in ("estimator", "base_estimator", "final_estimator"):
            params[pname] = base
        elif pname == "estimators":
            params[pname] = [("a", base), ("b", tree)]
        elif pname == "steps":
            params[pname] = [("scale", StandardScaler()), ("model", base)]
        elif pname == "transformers":
            params[pname] = [("num", StandardScaler(), [0, 1]), ("rest", "passthrough", [2, 3])]
        elif pname == "transformer_list":
            params[pname] = [("pca", PCA(2)), ("scale", StandardScaler())]
        elif pname in ("param_grid", "param_distributions"):
            params[pname] = {"fit_intercept": [True, False]}
        elif pname == "n_features_to_select":
            params[pname] = 2
        elif pname == "threshold":
            params[pname] = 0.5
        else:
            print(f"  note: {name}: no value for required parameter {pname!r}")
            return None
    return params


def _kind(cls: type) -> str:
    from sklearn.base import ClassifierMixin, ClusterMixin, RegressorMixin, TransformerMixin

    for mixin, kind in (
        (ClassifierMixin, "classifier"),
        (RegressorMixin, "regressor"),
        (ClusterMixin, "cluster"),
        (TransformerMixin, "transformer"),
    ):
        if issubclass(cls, mixin):
            return kind
    tags = getattr(cls, "__sklearn_tags__", None)
    if tags is not None:
        try:
            estimator_type = cls().__sklearn_tags__().estimator_type
        except Exception:
            estimator_type = None
        if estimator_type in ("classifier", "regressor"):
            return str(estimator_type)
    return "other"


def sklearn_estimators() -> Iterator[tuple[str, Any]]:
    """Every estimator `all_estimators()` lists, fitted on small data where it can be."""
    from sklearn.base import clone
    from sklearn.utils import all_estimators

    data = _sklearn_data()
    x, y_cls, y_reg = data["X"], data["y_cls"], data["y_reg"]
    generic: list[tuple[Any, ...]] = [
        (x,),
        (x, y_cls),
        (x, y_reg),
        (x, data["y_pos"]),
        (data["text"],),
        (data["dicts"],),
        (data["X_square"],),
        (data["X_int"],),
        (x, data["Y_reg2"]),
    ]
    attempts: dict[str, list[tuple[Any, ...]]] = {
        "classifier": [
            (x, y_cls),
            (x, data["y_bin"]),
            (x, data["Y_multi"]),
            (data["X_int"], y_cls),
        ],
        "regressor": [(x, y_reg), (x, data["y_pos"]), (x, data["Y_reg2"]), (x[:, 0], y_reg)],
        "cluster": [(x,)],
        "transformer": [
            (x,),
            (x, y_cls),
            (data["text"],),
            (data["dicts"],),
            (y_cls,),
            (x, y_reg),
            (data["Y_multi"],),
            (data["X_int"],),
            ([["a", "b"], ["c"]] * 5,),
            (x[:, 0], y_reg),
            ([{"a": 1, "b": 2}] * 10,),
        ],
        "other": [(x,), (x, y_cls), (x, y_reg)],
    }
    for name, cls in all_estimators():
        kind = _kind(cls)
        params = _sklearn_params(name, cls, kind)
        if params is None:
            continue
        try:
            est = cls(**params)
        except Exception as exc:
            print(f"  note: {name} cannot be constructed: {exc!r:.100}")
            continue
        yield f"{name}_unfitted", est
        for args in attempts[kind] + generic:
            fitted = clone(est)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitted.fit(*args)
            except Exception:  # noqa: S112  (trying the next kind of data)
                continue
            yield name, fitted
            break
        else:
            print(f"  note: {name} could not be fitted on any of the sample data")


def _metadata_routed() -> Any:
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = _sklearn_data()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=True),
            LogisticRegression().set_fit_request(sample_weight=True),
        )
        return pipe.fit(data["X"], data["y_cls"], sample_weight=None)


def sklearn_realistic() -> dict[str, Any]:
    """Pipelines people actually ship."""
    import numpy as np
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor, make_column_selector
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.metrics import get_scorer, get_scorer_names
    from sklearn.model_selection import (
        GridSearchCV,
        KFold,
        RandomizedSearchCV,
        RepeatedStratifiedKFold,
        ShuffleSplit,
        StratifiedKFold,
    )
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        LabelEncoder,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )
    from sklearn.svm import SVC

    data = _sklearn_data()
    x, y, y_reg = data["X"], data["y_cls"], data["y_reg"]
    frame = pd.DataFrame(
        {
            "age": x[:, 0],
            "income": x[:, 1],
            "city": np.array(["a", "b", "c"])[data["X_int"][:, 0] % 3],
            "kind": pd.Categorical(np.array(["u", "v"])[data["X_int"][:, 1] % 2]),
        }
    )
    frame.loc[3, "age"] = np.nan
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ["age", "income"],
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("ord", OrdinalEncoder(), ["kind"]),
        ]
    )
    factories: dict[str, Callable[[], Any]] = {
        "column_pipeline": lambda: Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))]).fit(
            frame, y
        ),
        "text_pipeline": lambda: make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), SGDClassifier()).fit(
            data["text"], y
        ),
        "forest": lambda: RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y),
        "gbc": lambda: GradientBoostingClassifier(n_estimators=5).fit(x, y),
        "gbc_bin": lambda: GradientBoostingClassifier(n_estimators=5).fit(x, y % 2),
        "gbr_huber": lambda: GradientBoostingRegressor(n_estimators=5, loss="huber").fit(x, y_reg),
        "gbr_quantile": lambda: GradientBoostingRegressor(n_estimators=5, loss="quantile").fit(x, y_reg),
        "hgb": lambda: HistGradientBoostingClassifier(max_iter=5).fit(x, y),
        "gap_hgb_categorical": lambda: HistGradientBoostingClassifier(
            max_iter=5, categorical_features="from_dtype"
        ).fit(frame[["income", "kind"]], y),
        "hgbr_poisson": lambda: HistGradientBoostingRegressor(max_iter=5, loss="poisson").fit(
            x, np.abs(y_reg)
        ),
        "hgbr_quantile": lambda: HistGradientBoostingRegressor(max_iter=5, loss="quantile", quantile=0.9).fit(
            x, y_reg
        ),
        "calibrated": lambda: CalibratedClassifierCV(SVC(), cv=3).fit(x, y),
        "calibrated_iso": lambda: CalibratedClassifierCV(
            RandomForestClassifier(n_estimators=3), method="isotonic", cv=3
        ).fit(x, y % 2),
        "grid": lambda: GridSearchCV(SVC(), {"C": [0.1, 1.0], "kernel": ["rbf", "linear"]}, cv=3).fit(x, y),
        "random_search": lambda: RandomizedSearchCV(
            KNeighborsClassifier(), {"n_neighbors": [1, 3, 5]}, n_iter=2, cv=3, random_state=0
        ).fit(x, y),
        "mlp": lambda: MLPClassifier(hidden_layer_sizes=(5,), max_iter=20).fit(x, y),
        "knn_kd": lambda: KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        "knn_ball": lambda: KNeighborsClassifier(algorithm="ball_tree").fit(x, y),
        "select": lambda: make_pipeline(SelectKBest(f_classif, k=2), LogisticRegression()).fit(x, y),
        "log_transform": lambda: make_pipeline(
            FunctionTransformer(np.log1p, inverse_func=np.expm1), LogisticRegression()
        ).fit(x, y),
        "target_log": lambda: TransformedTargetRegressor(func=np.log1p, inverse_func=np.expm1).fit(
            x, np.abs(y_reg)
        ),
        "label_encoder": lambda: LabelEncoder().fit(["cat", "dog", "bird"]),
        "isolation": lambda: IsolationForest(n_estimators=5, random_state=0).fit(x),
        "svc_proba": lambda: SVC(probability=True).fit(x, y),
        "cv_splitters": lambda: [
            GridSearchCV(LogisticRegression(), {"C": [1.0]}, cv=cv).fit(x, y)
            for cv in (
                StratifiedKFold(3, shuffle=True, random_state=0),
                KFold(3),
                ShuffleSplit(2, random_state=0),
                RepeatedStratifiedKFold(n_splits=2, n_repeats=1, random_state=0),
            )
        ],
        "column_selector": lambda: ColumnTransformer(
            [
                ("num", StandardScaler(), make_column_selector(dtype_include="number")),
                ("cat", OneHotEncoder(sparse_output=False), make_column_selector(dtype_include=object)),
            ],
            remainder="passthrough",
        ).fit(frame),
        "metadata_routing": _metadata_routed,
        "scorers": lambda: {n: get_scorer(n) for n in get_scorer_names()},
        "grid_multimetric": lambda: GridSearchCV(
            LogisticRegression(),
            {"C": [0.5, 1.0]},
            cv=3,
            refit="f1_macro",
            scoring=["accuracy", "f1_macro", "roc_auc_ovr"],
        ).fit(x, y),
    }
    out: dict[str, Any] = {}
    for stem, make in factories.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[stem] = make()
        except Exception as exc:
            print(f"  note: sklearn {stem} cannot be built with this version: {exc!r:.100}")
    return out


def build_sklearn(dest: Path) -> Iterator[Path]:
    for stem, est in sklearn_realistic().items():
        yield from _dump(dest, f"sklearn_{stem}", est)
        yield from _joblib(
            dest,
            f"sklearn_{stem}",
            est,
            (0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3), ("lz4", 3)),
        )
    for name, est in sklearn_estimators():
        yield from _dump(dest, f"sklearn_all_{name}", est, (0, 2, 4, 5))
        yield from _joblib(dest, f"sklearn_all_{name}", est)


# -- LightGBM and XGBoost -------------------------------------------------------------


def build_lightgbm(dest: Path) -> Iterator[Path]:
    import lightgbm as lgb

    data = _sklearn_data()
    x, y, y_reg = data["X"], data["y_cls"], data["y_reg"]
    objs: dict[str, Any] = {
        "classifier": lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y),
        "classifier_bin": lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y % 2),
        "regressor": lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(x, y_reg),
        "ranker": lgb.LGBMRanker(n_estimators=5, verbose=-1, min_child_samples=2).fit(
            x, y, group=[20, 20, 20]
        ),
        "booster": lgb.train(
            {"objective": "regression", "verbose": -1}, lgb.Dataset(x, y_reg), num_boost_round=5
        ),
    }
    for stem, obj in objs.items():
        yield from _dump(dest, f"lightgbm_{stem}", obj)
        yield from _joblib(dest, f"lightgbm_{stem}", obj, (0, 3))


def build_xgboost(dest: Path) -> Iterator[Path]:
    import xgboost as xgb

    data = _sklearn_data()
    x, y, y_reg = data["X"], data["y_cls"], data["y_reg"]
    objs: dict[str, Any] = {
        "classifier": xgb.XGBClassifier(n_estimators=5).fit(x, y),
        "classifier_bin": xgb.XGBClassifier(n_estimators=5).fit(x, y % 2),
        "regressor": xgb.XGBRegressor(n_estimators=5).fit(x, y_reg),
        "rf": xgb.XGBRFClassifier(n_estimators=5).fit(x, y),
        "rf_regressor": xgb.XGBRFRegressor(n_estimators=5).fit(x, y_reg),
        "ranker": xgb.XGBRanker(n_estimators=5).fit(x, y, qid=[0] * 20 + [1] * 20 + [2] * 20),
        "booster": xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, y_reg), num_boost_round=5),
    }
    for stem, obj in objs.items():
        yield from _dump(dest, f"xgboost_{stem}", obj)
        yield from _joblib(dest, f"xgboost_{stem}", obj, (0, 3))


# -- PyTorch --------------------------------------------------------------------------


def torch_modules() -> dict[str, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    mods: dict[str, Any] = {
        "mlp": nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2), nn.Softmax(-1)),
        "cnn": nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.LeakyReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, groups=2),
            nn.GroupNorm(2, 4),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
            nn.LogSoftmax(dim=1),
        ),
        "conv_misc": nn.ModuleList(
            [
                nn.Conv1d(2, 2, 3),
                nn.Conv3d(1, 1, 1),
                nn.ConvTranspose2d(2, 2, 2),
                nn.ConvTranspose1d(1, 1, 2),
                nn.AvgPool1d(2),
                nn.AvgPool2d(2),
                nn.MaxPool1d(2),
                nn.AdaptiveMaxPool2d(1),
                nn.AdaptiveAvgPool1d(1),
                nn.BatchNorm1d(3),
                nn.BatchNorm3d(2),
                nn.InstanceNorm2d(2),
                nn.LayerNorm([4]),
                nn.Upsample(scale_factor=2.0),
                nn.PixelShuffle(2),
                nn.Unflatten(1, (2, 2)),
                nn.ZeroPad2d(1),
                nn.ReflectionPad2d(1),
                nn.Identity(),
                nn.Dropout2d(),
                nn.AlphaDropout(),
                nn.Embedding(10, 4, padding_idx=0),
                nn.EmbeddingBag(10, 4),
                nn.Bilinear(2, 2, 2),
                nn.LocalResponseNorm(2),
                nn.RMSNorm(4) if hasattr(nn, "RMSNorm") else nn.Identity(),
            ]
        ),
        "activations": nn.ModuleDict(
            {
                "gelu": nn.GELU(approximate="tanh"),
                "tanh": nn.Tanh(),
                "sigmoid": nn.Sigmoid(),
                "elu": nn.ELU(),
                "prelu": nn.PReLU(),
                "selu": nn.SELU(),
                "softplus": nn.Softplus(),
                "mish": nn.Mish(),
                "hardswish": nn.Hardswish(),
                "relu6": nn.ReLU6(),
                "glu": nn.GLU(),
                "celu": nn.CELU(),
                "hardtanh": nn.Hardtanh(),
                "logsigmoid": nn.LogSigmoid(),
                "softsign": nn.Softsign(),
                "tanhshrink": nn.Tanhshrink(),
                "threshold": nn.Threshold(0.1, 0.0),
                "softmin": nn.Softmin(1),
                "hardsigmoid": nn.Hardsigmoid(),
                "rrelu": nn.RReLU(),
                "softmax2d": nn.Softmax2d(),
            }
        ),
        "rnns": nn.ModuleList(
            [
                nn.LSTM(4, 8, num_layers=2, batch_first=True, bidirectional=True),
                nn.GRU(4, 8),
                nn.RNN(4, 8),
                nn.LSTMCell(4, 8),
                nn.GRUCell(4, 8),
                nn.RNNCell(4, 8),
            ]
        ),
        "transformer_encoder": nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True),
            num_layers=2,
            enable_nested_tensor=False,
        ),
        "transformer_gelu": nn.TransformerDecoderLayer(
            d_model=8, nhead=2, dim_feedforward=16, activation="gelu"
        ),
        "transformer": nn.Transformer(
            d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16
        ),
        "attention": nn.MultiheadAttention(8, 2),
        "losses": nn.ModuleList(
            [
                nn.CrossEntropyLoss(label_smoothing=0.1),
                nn.MSELoss(),
                nn.BCEWithLogitsLoss(),
                nn.NLLLoss(),
                nn.L1Loss(),
                nn.SmoothL1Loss(),
                nn.HuberLoss(),
                nn.KLDivLoss(),
                nn.BCELoss(),
                nn.CTCLoss(),
                nn.CosineEmbeddingLoss(),
                nn.TripletMarginLoss(),
            ]
        ),
    }
    mods["spectral"] = nn.utils.spectral_norm(nn.Linear(3, 3))
    mods["weight_norm_old"] = nn.utils.weight_norm(nn.Linear(3, 3))
    return mods


def torch_state_objects() -> dict[str, Any]:
    import numpy as np
    import torch

    mods = torch_modules()
    tensors = {
        str(dt).removeprefix("torch."): torch.zeros(3, dtype=dt)
        for dt in (
            torch.float64,
            torch.float32,
            torch.float16,
            torch.bfloat16,
            torch.int8,
            torch.int16,
            torch.int32,
            torch.int64,
            torch.uint8,
            torch.bool,
            torch.complex64,
            torch.complex128,
            *(
                getattr(torch, n)
                for n in ("uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2")
                if hasattr(torch, n)
            ),
        )
    }
    tensors["noncontiguous"] = torch.arange(12.0).reshape(3, 4).t()
    tensors["view_shared"] = tensors["float32"][1:]
    tensors["scalar"] = torch.tensor(1.5)
    tensors["requires_grad"] = torch.ones(2, requires_grad=True)
    tensors["sparse_coo"] = torch.eye(3).to_sparse()
    tensors["sparse_csr"] = torch.eye(3).to_sparse_csr()
    tensors["quantized"] = torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.quint8)
    tensors["quantized_channel"] = torch.quantize_per_channel(
        torch.ones(2, 2), torch.tensor([0.1, 0.2]), torch.tensor([0, 0]), 0, torch.qint8
    )
    model = mods["mlp"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
    objs: dict[str, Any] = {
        "state_dict": model.state_dict(),
        "tensors": tensors,
        "checkpoint": {
            "epoch": 3,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": torch.get_rng_state(),
            "generator": torch.Generator().manual_seed(1).get_state(),
            "loss": 0.25,
            "args": argparse.Namespace(lr=1e-3, name="run"),
        },
        "sgd_checkpoint": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict(),
        "meta": {
            "size": torch.Size([2, 3]),
            "device": torch.device("cpu"),
            "dtype": torch.float16,
            "dtypes": [torch.float32, torch.int64, torch.bool, torch.bfloat16, torch.complex64],
            "layout": torch.strided,
            "sparse_layout": torch.sparse_coo,
            "qscheme": torch.per_tensor_affine,
        },
        "parameter": torch.nn.Parameter(torch.ones(2)),
        "parameter_frozen": torch.nn.Parameter(torch.ones(2), requires_grad=False),
        "buffer_attrs": {name: mod.state_dict() for name, mod in mods.items() if name != "lazy"},
    }
    qmodel = torch.ao.quantization.quantize_dynamic(
        torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()),
        {torch.nn.Linear},
        dtype=torch.qint8,
    )
    objs["quantized_state_dict"] = qmodel.state_dict()
    objs["layouts"] = {
        "csc": torch.eye(3).to_sparse_csc(),
        "bsr": torch.eye(2).to_sparse_bsr((1, 1)),
        "nested": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        "meta": torch.ones(2, device="meta"),
    }
    objs["misc"] = {
        "packed": torch.nn.utils.rnn.pack_sequence([torch.ones(3, 1), torch.ones(2, 1)]),
        "generator": torch.Generator().manual_seed(3),
        "numpy": np.arange(3.0),
        "numpy_rng": np.random.get_state(),
        "buffer": torch.nn.Buffer(torch.ones(2)) if hasattr(torch.nn, "Buffer") else torch.ones(2),
        "weight_norm_state": torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(2, 2)).state_dict(),
        "scaler": torch.amp.GradScaler("cpu").state_dict() if hasattr(torch, "amp") else {},
    }
    objs["subclass_parameter"] = {
        "p": torch.nn.Parameter(torch.ones(2)),
        "t": torch.ones(2).as_subclass(torch.Tensor),
    }
    return objs


def build_torch(dest: Path) -> Iterator[Path]:
    import torch

    objs = torch_state_objects()
    whole = {f"module_{k}": v for k, v in torch_modules().items()}
    for stem, obj in {**objs, **whole}.items():
        for tag, kwargs in (
            ("", {}),
            (".p2", {"pickle_protocol": 2}),
            (".p4", {"pickle_protocol": 4}),
            (".legacy", {"_use_new_zipfile_serialization": False}),
        ):
            # torch's legacy stream names a whole module's class inside a persistent id,
            # which the scanner does not resolve yet: a known gap.
            legacy_module = tag == ".legacy" and stem.startswith("module_")
            path = dest / f"torch_{'gap_legacy_' if legacy_module else ''}{stem}{tag}.pt"
            try:
                torch.save(obj, path, **kwargs)
            except Exception as exc:
                print(f"  note: {stem} cannot be saved as {tag or 'zip'}: {exc!r:.100}")
                continue
            yield path
    # Whole dynamically quantized models carry TorchBind objects (torch.ScriptObject),
    # and plain pickle.dumps of a tensor nests a torch.save archive behind
    # torch.storage._load_from_bytes: neither is allowlisted, on purpose.
    qmodel = torch.ao.quantization.quantize_dynamic(
        torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LSTM(4, 4)),
        {torch.nn.Linear, torch.nn.LSTM},
        dtype=torch.qint8,
    )
    path = dest / "torch_gap_quantized_module.pt"
    torch.save(qmodel, path)
    yield path
    yield from _dump(dest, "torch_gap_plain_pickle_tensor", {"w": torch.ones(2)}, (2, 5))
    # An unused lazy module keeps its load hooks as bound methods (builtins.getattr).
    path = dest / "torch_gap_lazy_module.pt"
    torch.save(torch.nn.LazyLinear(3), path)
    yield path


# -- transformers ---------------------------------------------------------------------


def build_transformers(dest: Path) -> Iterator[Path]:
    import numpy as np
    import torch
    import transformers as tf

    objs: dict[str, Any] = {
        "configs": [
            tf.BertConfig(),
            tf.GPT2Config(),
            tf.LlamaConfig(),
            tf.T5Config(),
            tf.ViTConfig(),
            tf.AutoConfig.for_model("roberta"),
            tf.DistilBertConfig(),
            tf.WhisperConfig(),
        ],
        "generation_config": tf.GenerationConfig(max_new_tokens=5, do_sample=True, top_p=0.9),
        "batch_encoding_pt": tf.BatchEncoding(
            {
                "input_ids": torch.ones(1, 3, dtype=torch.long),
                "attention_mask": torch.ones(1, 3, dtype=torch.long),
            }
        ),
        "batch_encoding_np": tf.BatchEncoding({"input_ids": np.ones((1, 3), dtype=np.int64)}),
        "batch_encoding_list": tf.BatchEncoding({"input_ids": [[1, 2, 3]]}),
    }
    try:
        objs["training_args"] = tf.TrainingArguments(output_dir=str(dest / "out"), report_to=[])
        objs["seq2seq_args"] = tf.Seq2SeqTrainingArguments(
            output_dir=str(dest / "out"), report_to=[], predict_with_generate=True
        )
    except Exception as exc:
        print(f"  note: TrainingArguments cannot be built here: {exc!r:.100}")
    objs["rng_state"] = {
        "python": __import__("random").getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.random.get_rng_state(),
    }
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = tf.get_linear_schedule_with_warmup(opt, 2, 10)
    opt.step()
    sched.step()
    objs["scheduler"] = sched.state_dict()
    objs["optimizer"] = opt.state_dict()
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers

        unk = "[UNK]"
        tok = Tokenizer(models.WordLevel({unk: 0, "hello": 1, "world": 2}, unk_token=unk))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token=unk)
        objs["batch_encoding_fast"] = fast(["hello world", "world"], padding=True)
        objs["batch_encoding_fast_pt"] = fast(["hello world"], return_tensors="pt")
    except Exception as exc:
        print(f"  note: no fast tokenizer here: {exc!r:.100}")
    for stem, obj in objs.items():
        path = dest / f"transformers_{stem}.bin"
        torch.save(obj, path)
        yield path
        # Plain pickle of a torch tensor nests a torch.save archive behind
        # torch.storage._load_from_bytes, which stays off the allowlist.
        has_tensor = stem in (
            "batch_encoding_pt",
            "batch_encoding_fast_pt",
            "rng_state",
            "scheduler",
            "optimizer",
        )
        yield from _dump(dest, f"transformers_{'gap_' if has_tensor else ''}{stem}", obj, (2, 5))


# -- Keras (config checks, not pickles) ------------------------------------------------


# Keras classes that run code or reach files and other frameworks: never on the list.
KERAS_EXCLUDED = frozenset(
    {
        "Lambda",
        "TFOpLambda",
        "SlicingOpLambda",
        "TensorFlowOpLayer",
        "TFSMLayer",
        "TorchModuleWrapper",
        "JaxLayer",
        "FlaxLayer",
        "DenseFeatures",
        "SequenceFeatures",
        "TFOptimizer",
        "AssociativeScan",
        "Cond",
        "ForiLoop",
        "Map",
        "Scan",
        "Switch",
        "VectorizedMap",
        "WhileLoop",
        "JVP",
    }
)


def keras_exported_classes() -> set[str]:
    """Class names Keras exports from its public modules, and keras.ops operation classes."""
    from keras.src.ops.operation import Operation

    names: set[str] = set()
    modules = [
        "layers",
        "initializers",
        "regularizers",
        "constraints",
        "optimizers",
        "optimizers.schedules",
        "losses",
        "metrics",
        "dtype_policies",
        "models",
        "activations",
        "quantizers",
        "random",
    ]
    for modname in modules:
        mod = importlib.import_module(f"keras.{modname}")
        for attr in dir(mod):
            obj = getattr(mod, attr)
            if attr.startswith("_") or attr in ("get", "serialize", "deserialize"):
                continue
            if inspect.isclass(obj):
                names.update({attr, obj.__name__})
            elif modname == "activations" and inspect.isfunction(obj):
                names.add(attr)
    for sub in ("numpy", "nn", "math", "linalg", "image", "core"):
        mod = importlib.import_module(f"keras.src.ops.{sub}")
        names.update(
            n
            for n, o in vars(mod).items()
            if inspect.isclass(o) and issubclass(o, Operation) and o.__module__ == mod.__name__
        )
    names.update({"Functional", "Sequential", "Model", "InputLayer"})
    return names - KERAS_EXCLUDED


def build_keras(dest: Path) -> Iterator[Path]:
    import keras
    from keras import layers

    inp = keras.Input((8, 4))
    x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(inp)
    x = layers.TimeDistributed(
        layers.Dense(3, kernel_regularizer="l2", kernel_constraint=keras.constraints.MaxNorm(2))
    )(x)
    x = layers.LayerNormalization()(x)
    x = layers.MultiHeadAttention(2, 2)(x, x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.2)(x)
    out = layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.HeNormal())(x)
    functional = keras.Model(inp, out)
    functional.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(), "accuracy"],
    )
    sequential = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.SeparableConv2D(4, 3),
            layers.GlobalMaxPooling2D(),
            layers.Dense(3),
            layers.Activation("gelu"),
            layers.ReLU(),
            layers.PReLU(),
            layers.Identity(),
            layers.Dense(1),
        ]
    )
    sequential.compile(optimizer="sgd", loss="mse", metrics=[keras.metrics.MeanAbsoluteError()])
    text = keras.Sequential(
        [
            keras.Input((5,), dtype="int32"),
            layers.Embedding(10, 4),
            layers.GRU(3),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    ops = keras.ops
    inp = keras.Input((4,))
    y = layers.Dense(3)(inp)
    y = ops.concatenate([ops.relu(ops.add(y, 1.0)), inp], axis=-1)[:, :2]
    with_ops = keras.Model(inp, keras.activations.gelu(y))
    models = {"functional": functional, "sequential": sequential, "text": text, "ops": with_ops}
    for stem, model in models.items():
        for suffix in ("keras", "h5"):
            path = dest / f"keras_{stem}.{suffix}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.save(path)
            yield path


# -- TensorFlow (SavedModel ops) ------------------------------------------------------


def build_tensorflow(dest: Path) -> Iterator[Path]:
    import tensorflow as tf

    class Small(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(tf.random.normal((4, 2)))
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(["a", "b"], [0, 1]), default_value=-1
            )

        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
        def __call__(self, x: Any) -> Any:
            y = tf.nn.relu(tf.matmul(x, self.w))
            if tf.reduce_sum(y) > 0:
                y = tf.nn.softmax(y)
            return tf.concat([y, tf.cast(tf.shape(x)[:1, None], tf.float32) * 0.0], 1)

        @tf.function(input_signature=[tf.TensorSpec((None,), tf.string)])
        def lookup(self, words: Any) -> Any:
            return self.table.lookup(tf.strings.lower(words))

    module = Small()
    path = dest / "tf_module"
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.__call__, "lookup": module.lookup}
    )
    yield path / "saved_model.pb"
    keras = tf.keras
    inp = keras.Input((6,))
    out = keras.layers.Dense(1)(keras.layers.Dense(4, activation="relu")(keras.layers.Normalization()(inp)))
    model = keras.Model(inp, out)
    model.compile("adam", "mse")
    path = dest / "tf_keras_export"
    model.export(str(path))
    yield path / "saved_model.pb"
    rnn = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    path = dest / "tf_keras_rnn"
    rnn.export(str(path))
    yield path / "saved_model.pb"


# -- the run --------------------------------------------------------------------------

# Samples whose file name holds one of these keys are benign files that the
# scanner flags anyway, for the reason given; their findings are listed apart.
GAPS: dict[str, tuple[str, frozenset[str]]] = {
    "gap_zoneinfo": (
        "zoneinfo.ZoneInfo pickles as builtins.getattr(ZoneInfo, '_unpickle'); getattr is dangerous by "
        "rule, so tz-aware pandas data in a named zone fails until the scanner resolves getattr on an "
        "allowlisted class",
        frozenset({"builtins.getattr"}),
    ),
    "gap_hgb_categorical": (
        "HistGradientBoosting* fitted on pandas categoricals keeps functools.partial(check_array, ...); "
        "functools is dangerous by rule",
        frozenset({"functools.partial"}),
    ),
    "gap_stringdtype": (
        "joblib writes numpy StringDType arrays as object arrays; the scanner cannot size a dtype built by "
        "numpy._core._internal._convert_to_stringdtype_kwargs",
        frozenset(),
    ),
    "gap_legacy_module": (
        "torch's legacy (non-zip) format names a whole module's class inside a persistent id "
        "('module', cls, file, source); the scanner reports the call through it as unresolvable",
        frozenset(),
    ),
    "gap_quantized_module": (
        "whole dynamically quantized torch models carry torch.ScriptObject (TorchBind): deliberately "
        "not allowlisted",
        frozenset({"torch.ScriptObject", "torch.ao."}),
    ),
    "gap_plain_pickle_tensor": (
        "pickle.dumps of a torch tensor nests a torch.save archive behind torch.storage._load_from_bytes "
        "(a full torch.load): deliberately not allowlisted",
        frozenset({"torch.storage._load_from_bytes"}),
    ),
    "transformers_gap_": (
        "pickle.dumps of torch tensors (see gap_plain_pickle_tensor)",
        frozenset({"torch.storage._load_from_bytes"}),
    ),
    "gap_lazy_module": (
        "an uninitialised lazy torch module keeps its load hooks as bound methods (builtins.getattr)",
        frozenset(
            {"builtins.getattr", "torch.utils.hooks.RemovableHandle", "torch.nn.modules.module._WrappedHook"}
        ),
    ),
    "gap_stats_frozen": (
        "scipy.stats distributions exec a code template from their pickled state in __setstate__ "
        "(rv_generic._attach_argparser_methods): deliberately not allowlisted",
        frozenset({"scipy.stats.", "builtins.getattr", "numpy.vectorize"}),
    ),
}


def _expected(gap: str | None, qualified: str) -> bool:
    if gap is None:
        return False
    return any(qualified == e or (e.endswith(".") and qualified.startswith(e)) for e in GAPS[gap][1])


BUILDERS: dict[str, tuple[str, Builder]] = {
    "numpy": ("numpy", build_numpy),
    "pandas": ("pandas", build_pandas),
    "scipy": ("scipy", build_scipy),
    "sklearn": ("sklearn", build_sklearn),
    "lightgbm": ("lightgbm", build_lightgbm),
    "xgboost": ("xgboost", build_xgboost),
    "torch": ("torch", build_torch),
    "transformers": ("transformers", build_transformers),
    "keras": ("keras", build_keras),
    "tensorflow": ("tensorflow", build_tensorflow),
}


def _versions(names: list[str]) -> str:
    out = []
    for name in names:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        out.append(f"{name} {getattr(mod, '__version__', '?')}")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated builders: " + ",".join(BUILDERS))
    parser.add_argument("--keep", type=Path, help="write the sample files here and keep them")
    parser.add_argument("--all", action="store_true", help="also print every global the samples reference")
    parser.add_argument("--fail-on", default="low", help="report other findings at or above (default low)")
    args = parser.parse_args(argv)

    from pipewarden.findings import Severity
    from pipewarden.scan import ScanPolicy, scan_path
    from pipewarden.scan._formats._keras import known_keras_classes
    from pipewarden.scan._formats._savedmodel import DANGEROUS_TF_OPS, safe_tf_ops

    threshold = Severity.parse(args.fail_on)
    chosen = args.only.split(",") if args.only else list(BUILDERS)
    unknown = set(chosen) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown builder(s): {', '.join(sorted(unknown))}")
    print("libraries:", _versions([BUILDERS[c][0] for c in chosen]))

    missing: dict[str, str] = {}
    other: list[str] = []
    seen: Counter[str] = Counter()
    gaps: dict[str, set[str]] = {}
    policy = ScanPolicy.default()
    with tempfile.TemporaryDirectory(prefix="pw-samples-") as tmp:
        root = args.keep or Path(tmp)
        for name in chosen:
            module, build = BUILDERS[name]
            try:
                importlib.import_module(module)
            except ImportError:
                print(f"skipped {name}: {module} is not installed")
                continue
            dest = root / name
            dest.mkdir(parents=True, exist_ok=True)
            count = 0
            for path in build(dest):
                count += 1
                report = scan_path(path, policy=policy)
                gap = next((g for g in GAPS if g in path.name), None)
                for f in report.findings:
                    qualified = f.evidence.get("global")
                    if gap is not None and (qualified is None or _expected(gap, qualified)):
                        what = qualified or f.evidence.get("target") or f.message[:80]
                        gaps.setdefault(gap, set()).add(f"{f.rule_id} {what}")
                    elif f.rule_id in ("PW-SCAN-101", "PW-SCAN-102"):
                        missing.setdefault(f.evidence["global"], str(path.relative_to(root)))
                    elif f.rule_id == "PW-SCAN-302" and "class_name" in f.evidence:
                        missing.setdefault(
                            f"keras class {f.evidence['class_name']}", str(path.relative_to(root))
                        )
                    elif f.rule_id in ("PW-SCAN-303", "PW-SCAN-304"):
                        missing.setdefault(f"tensorflow op {f.evidence['op']}", str(path.relative_to(root)))
                    elif f.severity >= threshold:
                        other.append(f"{path.relative_to(root)}: {f.rule_id} {f.severity}: {f.message}")
                if args.all:
                    seen.update(_all_globals(path))
            print(f"{name}: {count} files scanned")
    if "keras" in chosen:
        try:
            exported = keras_exported_classes()
        except ImportError:
            exported = set()
        for cls in sorted(exported - known_keras_classes()):
            missing.setdefault(f"keras class {cls}", "exported by keras")
        other.extend(
            f"keras_classes.list names excluded class {c}" for c in known_keras_classes() & KERAS_EXCLUDED
        )
    other.extend(f"tensorflow_ops.list names dangerous op {op}" for op in safe_tf_ops() & DANGEROUS_TF_OPS)
    if args.all:
        print("\nevery global referenced (count of files):")
        for qualified, n in sorted(seen.items()):
            print(f"  {qualified}  {n}")
    if gaps:
        print("\nknown gaps (benign files the scanner flags anyway, or deliberately unlisted; not counted):")
        for gap, found in sorted(gaps.items()):
            print(f"  {gap}: {GAPS[gap][0]}")
            lines = sorted({line[:110] for line in found})
            for line in lines[:6]:
                print(f"      {line}")
            if len(lines) > 6:
                print(f"      ... and {len(lines) - 6} more")
    if missing:
        print(f"\n{len(missing)} name(s) not on the allowlist:")
        for qualified, where in sorted(missing.items()):
            print(f"  {qualified}    (first in {where})")
    if other:
        print(f"\n{len(other)} other finding(s) at or above {threshold}:")
        for line in other:
            print(f"  {line}")
    if not missing and not other:
        print("\nall samples scan clean")
    return 1 if missing or other else 0


def _all_globals(path: Path) -> set[str]:
    """Every global a file's pickles name, safe or not (for reviewing the list)."""
    from pipewarden.scan import ScanPolicy
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._limits import ScanLimits
    from pipewarden.scan._pickle._emulator import emulate
    from pipewarden.scan._pickle._source import Source

    found: set[str] = set()
    blobs: list[bytes] = []
    data = path.read_bytes()
    if data[:2] == b"PK":
        import zipfile

        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            blobs.extend(zf.read(n) for n in zf.namelist() if n.endswith(".pkl"))
    elif data[:1] == b"\x80":
        blobs.append(data)
    ctx = ScanContext(path=str(path), policy=ScanPolicy.default(), limits=ScanLimits())
    for blob in blobs:
        src = Source(io.BytesIO(blob), size=len(blob))
        while not src.at_end():
            result = emulate(src, ctx, member=None, torch_ids=True, joblib_arrays=True)
            found.update(f"{m}.{n}" for m, n in result.globals)
            if not result.stopped:
                break
    return found


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
