"""`make bench` entry for the HTTP request-path comparison; the code is in bench/_http_bench.py.

This file must be called http.py, which is also the name of a standard-library package. Scripts run from
bench/ have this directory on sys.path, so `import http` (httpx, uvicorn, ...) finds this file first:
when imported under that name it loads the real standard-library package in its place.
"""

if __name__ == "http":
    import importlib.util
    import os
    import sys

    _std = os.path.join(os.path.dirname(os.__file__), "http", "__init__.py")
    _spec = importlib.util.spec_from_file_location("http", _std, submodule_search_locations=[os.path.dirname(_std)])
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["http"] = _module
    _spec.loader.exec_module(_module)
elif __name__ == "__main__":
    import sys

    from _http_bench import main

    sys.exit(main())
