"""Issue 24, bounded resources: each attack of items 6 (memory), 7 (one crafted plan in a batch), 8 (Dask
addresses) and 9 (no execution limit) fails safely: one line, exit 2 (or that job's failure in the run summary),
nothing written or lost, no traceback, no hang. The memory attacks run the real command line in a subprocess under
a small address-space limit (``RLIMIT_AS``), where an unbounded read ends in ``MemoryError`` or the OOM killer."""

from __future__ import annotations

import os
import random
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipnb import limits
from pipnb.errors import DataError, PlanError

PIPNB = Path(sys.executable).with_name("pipnb")
FIXTURES = Path(__file__).parent / "notebooks_fixture"
#: The address space the memory attacks run in: pipnb's imports need about 1.2 GB of it (one BLAS thread).
SMALL_LIMIT = 2 << 30


def cli(*args, cwd: Path | None = None, limit: int | None = None, timeout: float = 120
        ) -> subprocess.CompletedProcess:
    def bounded():                     # in the child only: this test process keeps its own limits
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(PIPNB), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=timeout, preexec_fn=bounded if limit else None)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("pipnb: error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


@pytest.fixture()
def data(tmp_path, demo_folder) -> Path:
    """A copy of the demo tables the test may spoil."""
    folder = tmp_path / "data"
    folder.mkdir()
    for table in demo_folder.glob("*.csv"):
        (folder / table.name).write_bytes(table.read_bytes())
    return folder


# -- item 6: memory exhaustion ---------------------------------------------------------------------------------
@pytest.mark.parametrize("table, row", [
    ("activities", "ACT9999999,R01,email,2025-06-02T08:00:00,,{}"),      # a 100 MB line appended to activities
    ("reps", "R99,{},East,Felix Greyling,SMB,2021-12-27T00:00:00"),        # a 100 MB rep name
])
def test_a_100_mb_line_is_one_line_naming_file_and_line_under_a_small_memory_limit(data, table, row):
    path = data / f"{table}.csv"
    lines = path.read_text().count("\n")
    with path.open("a") as f:
        f.write(row.format("A" * 100_000_000) + "\n")
    result = cli("scan", "--data", data, limit=SMALL_LIMIT)
    assert result.returncode == 2
    assert one_line(result) == (f"pipnb: error: {table}.csv: line {lines + 1} is longer than 1,024 KB, the limit "
                                "for one row of an export; a CRM row is a few hundred bytes: remove that line or "
                                "export the table again")


def test_a_value_over_the_field_limit_names_file_row_and_column(data):
    from pipnb.sources.files import read_table_file

    path = data / "reps.csv"
    rows = path.read_text().splitlines()
    rows[2] = rows[2].replace(rows[2].split(",")[1], "N" * (limits.MAX_FIELD_CHARS + 1))   # row 3's rep_name
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        read_table_file(path)
    assert str(caught.value) == ("reps.csv row 3: the value of column 'rep_name' is 131,073 characters long, over "
                                 "the limit of 131,072; shorten it or leave that column out of the export")
    rows[2] = rows[2].replace("N" * (limits.MAX_FIELD_CHARS + 1), "N" * limits.MAX_FIELD_CHARS)   # at the limit
    path.write_text("\n".join(rows) + "\n")
    assert read_table_file(path)["rep_name"].str.len().max() == limits.MAX_FIELD_CHARS
    quoted = '"' + "\n".join(["N" * 70_000] * 2) + '"'          # over the limit on two lines under it
    rows[2] = rows[2].replace("N" * limits.MAX_FIELD_CHARS, quoted)
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="^reps.csv row 3: the value of column 'rep_name' is 140,001 characters"):
        read_table_file(path)


def test_a_database_value_over_the_field_limit_names_table_row_and_column(tmp_path, demo):
    import sqlite3

    from pipnb.sources import load

    with sqlite3.connect(tmp_path / "crm.db") as db:
        for name in ("reps", "opportunities"):
            getattr(demo, name).to_sql(name, db, index=False)
        db.execute("UPDATE reps SET rep_name = ? WHERE rowid = 2", ("N" * (limits.MAX_FIELD_CHARS + 1),))
    with pytest.raises(DataError) as caught:
        load(f"sqlite:///{tmp_path / 'crm.db'}")
    assert "row 2: the value of column 'rep_name' is 131,073 characters long" in str(caught.value)


def test_200k_reps_stop_before_the_weekly_panel_with_how_to_cut_the_data(data):
    with (data / "reps.csv").open("a") as f:
        f.writelines(f"X{i:07d},Name {i},East,Felix Greyling,SMB,2021-12-27T00:00:00\n" for i in range(200_000))
    start = time.monotonic()
    result = cli("scan", "--data", data, limit=SMALL_LIMIT)
    assert result.returncode == 2 and time.monotonic() - start < 60
    line = one_line(result)
    assert line.startswith("pipnb: error: the weekly panel of 200,024 reps over 56 weeks needs about 41.7 GB of "
                           "memory and "), line
    assert line.endswith("is available: load one team or segment at a time (a folder or a source YAML each), or a "
                         "shorter period"), line


def test_a_table_the_memory_left_cannot_hold_is_refused_before_it_is_read(data, monkeypatch):
    from pipnb.sources.files import read_table_file

    path = data / "activities.csv"
    rows = path.read_text().splitlines()
    path.write_text("\n".join([rows[0], *(rows[1:] * 3)]) + "\n")      # 235k rows: about 100 MB once loaded
    monkeypatch.setattr(limits, "available_memory", lambda: 50 << 20)
    with pytest.raises(DataError) as caught:
        read_table_file(path)
    assert re.fullmatch(r"activities\.csv: reading its 235,275 rows of 6 columns needs about \d+ MB of memory and 50 "
                        r"MB is available: export a shorter period or fewer columns \(or one team at a time\), or run "
                        r"where there is more memory", str(caught.value)), str(caught.value)
    monkeypatch.setattr(limits, "available_memory", lambda: 200 << 20)
    assert len(read_table_file(path)) == 235_275


def test_scan_csv_counts_lines_and_finds_the_first_long_one_across_blocks(tmp_path, monkeypatch):
    """Against a plain Python reading of the same bytes, with blocks of 7 bytes so that lines cross them."""
    monkeypatch.setattr(limits, "_BLOCK", 7)
    rng = random.Random(24)
    for case in range(200):
        lengths = [rng.choice([0, 1, 5, 6, 7, 8, 20, 31]) for _ in range(rng.randint(1, 12))]
        text = "\n".join("x" * n for n in lengths) + rng.choice(["", "\n"])
        path = tmp_path / f"{case}.csv"
        path.write_bytes(text.encode())
        reference = text.split("\n")
        if reference[-1] == "":
            reference.pop()
        too_long = [i + 1 for i, line in enumerate(reference) if len(line) > 20]
        if too_long:
            with pytest.raises(DataError, match=f"^{case}.csv: line {too_long[0]} is longer"):
                limits.scan_csv(path, max_line=20)
        else:
            assert limits.scan_csv(path, max_line=20) == (len(reference), max(map(len, reference), default=0))


def test_available_memory_reads_the_address_space_limit_in_a_child():
    code = ("import resource; from pipnb.limits import available_memory; "
            f"resource.setrlimit(resource.RLIMIT_AS, ({SMALL_LIMIT}, {SMALL_LIMIT})); print(available_memory())")
    room = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0 < room < SMALL_LIMIT


# -- item 9: no execution limit ----------------------------------------------------------------------------------
def test_a_notebook_that_never_ends_is_stopped_at_its_limit_and_fails_alone(tmp_path):
    from pipnb import __version__
    from pipnb.job import Job
    from pipnb.record import read_record
    from pipnb.runner import run_jobs

    def job(rep, notebook, **parameters):
        return Job(FIXTURES / f"{notebook}.ipynb", tmp_path / rep / "stage.ipynb", tmp_path / rep / "stage.html",
                   parameters={"rep_id": rep, **parameters}, header={"rep_name": rep, "stage": "stage"},
                   label=f"{rep} stage", timeout=4, kernel_name="python3")

    start = time.monotonic()
    stuck, fine = run_jobs([job("R01", "toy_sleep", seconds=3600.0), job("R02", "toy_trivial")], jobs_n=2,
                           progress=False)
    assert time.monotonic() - start < 60
    assert stuck.status == "failed" and not (tmp_path / "R01" / "stage.html").exists()
    assert stuck.error == ("stopped: the notebook was still running after 4 seconds, the policy's limit "
                           "(notebook_timeout_minutes in params/policy.yaml); find the cell that does not end, or "
                           "raise the limit")
    assert fine.status == "ok" and read_record(fine.ipynb).pipnb_version == __version__   # item 8: who rendered it


def test_the_policy_sets_the_limit_generously_and_refuses_none(tmp_path):
    from pipnb.policy import Policy

    assert Policy.default().notebook_timeout_minutes == 15
    from pipnb.workdir import DEFAULT_POLICY

    (tmp_path / "policy.yaml").write_text(DEFAULT_POLICY.read_text().replace("notebook_timeout_minutes: 15",
                                                                             "notebook_timeout_minutes: 0"))
    with pytest.raises(PlanError, match="notebook_timeout_minutes"):
        Policy.from_yaml(tmp_path / "policy.yaml")


# -- item 7: one crafted plan never aborts a batch -----------------------------------------------------------------
@pytest.fixture()
def folder(tmp_path, demo, demo_folder) -> Path:
    """A working folder: the responder's plan (its final review due), the non-responder's (not due), and R99.yaml,
    2,000 nested ``[`` (4 KB)."""
    from pipnb.batch import demo_plan, plan_path

    due = demo_plan(demo, "responder")
    later = demo_plan(demo, "non_responder")
    later = later.model_copy(update={"start": later.start.replace(year=later.start.year + 1)})
    for plan in (due, later):
        plan.to_yaml(plan_path(tmp_path / "params", plan.rep_id))
    (tmp_path / "params" / "plans" / "R99.yaml").write_text("[" * 2000)
    return tmp_path


def test_a_crafted_plan_is_its_own_failure_and_every_other_plan_is_reviewed(folder, demo_folder, monkeypatch):
    from pipnb.batch.jobs import find_plans, review_jobs
    from pipnb.batch.prepare import prepare
    from pipnb.job import Job, Problem
    from pipnb.plan import plans_by_folder

    monkeypatch.chdir(folder)
    batch = prepare(str(demo_folder))
    jobs = {j.label: j for j in review_jobs(batch, find_plans(batch), "final")}
    crafted = jobs.pop("params/plans/R99.yaml")
    assert isinstance(crafted, Problem) and not crafted.skipped
    assert "nested deeper than 64 levels" in crafted.error and "\n" not in crafted.error and len(crafted.error) < 300
    due = next(j for j in jobs.values() if isinstance(j, Job))
    assert due.timeout == 15 * 60                                   # item 9: the policy's limit reaches each job
    assert len(plans_by_folder(folder / "params")) == 2              # the index and the dashboard leave it out


def test_run_final_with_a_crafted_plan_prints_the_summary_and_writes_the_index(folder, demo_folder):
    (folder / "params" / "plans" / f"{_responder()}.yaml").unlink()     # the one review due: no kernel in this test
    result = cli("run", "--data", demo_folder, "--stage", "final", cwd=folder)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert "0 ok, 0 skipped, 1 failed, 1 not due" in result.stdout, result.stdout
    assert "params/plans/R99.yaml" in result.stdout and "nested deeper than 64 levels" in result.stdout  # io.read_yaml
    assert (folder / "reports" / "index.html").is_file()


def _responder() -> str:
    from pipnb.demo import DEMO_CASES

    return DEMO_CASES["responder"]


# -- item 8: Dask addresses ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["not a url", "tcp://[::1", "inproc://x", "ucx://10.0.0.1:13337",
                                     "http://127.0.0.1:8787/status", "tcp://host:port", "tcp://", "x" * 5000])
def test_an_address_that_is_not_a_scheduler_address_is_one_line_before_any_connection(address):
    from pipnb.cluster import SchedulerError, check_address

    with pytest.raises(SchedulerError) as caught:
        check_address(address)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value) and len(str(caught.value)) < 400


def test_scheduler_addresses_that_are_fine():
    from pipnb.cluster import check_address

    assert check_address("tcp://127.0.0.1:8786") == ("tcp", "127.0.0.1", 8786)
    assert check_address("scheduler.local") == ("tcp", "scheduler.local", 8786)
    assert check_address("tls://[::1]:9000") == ("tls", "::1", 9000)


class _Server:
    """A loopback TCP server that greets each connection with ``greeting`` (or nothing) and then stays silent."""

    def __init__(self, greeting: bytes):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.greeting, self.conns = greeting, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.greeting:
                conn.sendall(self.greeting)

    def close(self):
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("greeting, why", [
    (b"", "it sent nothing within 1 s"),                              # an HTTP server: the dashboard's port
    (b"SSH-2.0-OpenSSH_9.6\r\n", "it sent other bytes"),              # as a frame length: 3 EiB
    (b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 16, "it sent other bytes"),
])
def test_a_service_that_is_not_a_dask_scheduler_is_named_within_the_timeout(greeting, why):
    from pipnb.cluster import SchedulerError, probe_scheduler

    server = _Server(greeting)
    try:
        start = time.monotonic()
        with pytest.raises(SchedulerError) as caught:
            probe_scheduler(server.address, timeout=1.0)
        assert time.monotonic() - start < 5
    finally:
        server.close()
    assert str(caught.value) == (f"--scheduler {server.address}: what answers there is not a Dask scheduler ({why}); "
                                 "give the scheduler's address, not its dashboard's (the scheduler's port is usually "
                                 "8786)")


def test_the_cli_refuses_a_malformed_scheduler_in_one_line_and_writes_nothing(tmp_path, demo_folder):
    result = cli("run", "--data", demo_folder, "--stage", "diagnose", "--reps", "R01", "--scheduler", "tcp://[::1",
                 cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)               # the command line masks what follows a scheme, as it does any URL's
    assert line.startswith("pipnb: error: --scheduler 'tcp://") and "' is not an address: give the " in line, line
    assert not (tmp_path / "reports" / "R01").exists()


def test_a_job_on_a_worker_of_another_pipnb_version_is_not_run(tmp_path):
    from pipnb.cluster import _same_version
    from pipnb.job import Job

    job = Job(FIXTURES / "toy_trivial.ipynb", tmp_path / "a.ipynb", None, label="R01 stage")
    result = _same_version(lambda *_: pytest.fail("run on the wrong version"), "0.0.0-other", job, "hash", None)
    assert result.status == "failed" and result.error.startswith("not run: its Dask worker runs pipnb ")
    assert not (tmp_path / "a.ipynb").exists()


def test_a_cluster_whose_workers_run_another_pipnb_version_is_refused_in_one_line(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from pipnb import _version
    from pipnb.cluster import SchedulerError
    from pipnb.job import Job
    from pipnb.runner import run_jobs

    job = Job(FIXTURES / "toy_trivial.ipynb", tmp_path / "R01" / "stage.ipynb", tmp_path / "R01" / "stage.html",
              label="R01 stage")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=50, memory_limit="1GiB") as cluster:
        monkeypatch.setattr(_version, "__version__", "0.0.0-client")
        with pytest.raises(SchedulerError) as caught:
            run_jobs([job], scheduler=cluster.scheduler_address, progress=False)
    assert "runs pipnb 0.1.0 and this client pipnb 0.0.0-client (1 of 1 workers differ)" in str(caught.value)
    assert not (tmp_path / "R01").exists()


def test_an_error_quoting_a_huge_value_shows_a_bounded_prefix_and_counts_the_rest():
    from pipnb.errors import PipnbError

    value = "x" * 50_000
    err = DataError(f"rep_name {value!r} is too long", file="reps.csv", row=7)
    text = str(err)
    assert text.startswith("reps.csv row 7: rep_name 'xxx")
    shown = PipnbError.MAX_CHARS
    assert len(text) < shown + 60
    hidden = len(f"reps.csv row 7: rep_name {value!r} is too long") - shown
    assert text.endswith(f"… ({hidden:,} more characters not shown)")
    assert str(PipnbError("short, as it was")) == "short, as it was"
