"""What the Python benchmarks share: running pixserve's commands and
starting `pixserve serve` on a free loopback port."""
import re
import subprocess


def run(*cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def start_server(binary, repo):
    """(process, base URL) of a server on the repository; the caller stops it."""
    p = subprocess.Popen([binary, "serve", "--repo", repo, "--host", "127.0.0.1", "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return p, m.group(1)
    raise RuntimeError("pixserve serve did not start")
