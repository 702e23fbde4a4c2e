"""The tests' independent S3 client: pyarrow's S3 filesystem, nothing of the exporter's.

    s3tool.py fetch s3://bucket/prefix DIR     download every object under the prefix into DIR (relative keys)
    s3tool.py list s3://bucket/prefix          print the keys under the prefix, relative, sorted, one per line
    s3tool.py put s3://bucket/key FILE         upload FILE as the object
    s3tool.py delete s3://bucket/key           delete one object
    s3tool.py rows s3://bucket/prefix          read the Parquet dataset under the prefix (hive partitions) and
                                               print {"rows": n, "columns": [...], "mints": n, "buckets": [...]}

Endpoint and credentials come from the same AWS_* variables the exporter reads.
"""
import json
import os
import sys
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pyarrow.fs as pafs


def s3():
    endpoint = urlparse(os.environ["AWS_ENDPOINT_URL"])
    return pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
    )


def path_of(url):
    assert url.startswith("s3://"), url
    return url[len("s3://"):].rstrip("/")


def keys_under(fs, prefix):
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path[len(prefix) + 1:] for i in infos if i.type == pafs.FileType.File)


def main(cmd, url, *rest):
    fs = s3()
    path = path_of(url)
    if cmd == "fetch":
        dest = rest[0]
        for rel in keys_under(fs, path):
            target = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with fs.open_input_stream(f"{path}/{rel}") as src, open(target, "wb") as out:
                out.write(src.read())
    elif cmd == "list":
        for rel in keys_under(fs, path):
            print(rel)
    elif cmd == "put":
        with open(rest[0], "rb") as src, fs.open_output_stream(path) as out:
            out.write(src.read())
    elif cmd == "delete":
        fs.delete_file(path)
    elif cmd == "rows":
        table = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive").to_table()
        print(json.dumps({
            "rows": table.num_rows,
            "columns": table.column_names,
            "mints": len(set(table.column("mint").to_pylist())),
            "buckets": sorted(set(str(b) for b in table.column("mint_bucket").to_pylist())),
        }))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(*sys.argv[1:])
