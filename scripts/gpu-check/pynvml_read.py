#!/usr/bin/env python3
"""Reads, through NVIDIA's Python bindings (pynvml, from the nvidia-ml-py package), what
`npm run gpu-check` compares the exporter with where nvidia-smi does not show it, and prints
one JSON object on stdout.

    python3 scripts/gpu-check/pynvml_read.py [--gpm-seconds S] [--events]

Only reads: it never calls an nvmlDeviceSet* function or anything else that changes a GPU.
--events also creates an event set, registers it for Xid and ECC events on each GPU (as the
exporter does) and frees it again: that changes nothing on the GPU either.

Counters (energy, violation time, field values) are read first, right after start, so they
are read as soon as possible after the exporter scrape that precedes this run; then two GPM
samples S seconds apart (default 1) give the GPM metrics, and the process utilization
samples of that same window are averaged per pid.

Output: {"ok": true, ...} (see scripts/gpu-check/pynvml.ts for the shape), or
{"ok": false, "stage": "import"|"init", "error": "..."} when pynvml is missing or NVML does
not initialise. The exit code is 0 either way; 2 for bad arguments.
"""
import json
import sys
import time

# Field ids the exporter reads (src/native/nvml-constants.ts), with NVLink throughput over all links.
ALL_LINKS = 0xFFFFFFFF
FIELDS = [3, 4, 5, 6, 29, 30, 31, 38, 45, 52, 59, 82, 83, 91, 94, (138, ALL_LINKS), (139, ALL_LINKS), 142, 143, 144, 145]
GPM_GPU_METRICS = [1, 2, 3, 5, 10, 11, 12, 13, 20, 21, 60, 61]
GPM_MIG_METRICS = [1, 2, 3, 5, 10, 11, 12, 13]
EVENT_XID, EVENT_SBE, EVENT_DBE = 0x8, 0x1, 0x2
NOT_AVAILABLE_64 = (1 << 64) - 1


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def err_text(e):
    """An NVML error with its return code, or a Python error (no code)."""
    code = getattr(e, "value", None)
    return {"error": str(e), "code": code} if isinstance(code, int) else {"error": "python: %s: %s" % (type(e).__name__, e)}


def attempt(errors, key, fn):
    """fn(), or None with the error under `key`. An NVML error keeps its return code
    ("NVML error 3: Not Supported"); anything else (a function this pynvml lacks, a Python
    error) is marked "python:", as it says nothing about the GPU."""
    try:
        return fn()
    except Exception as e:
        code = getattr(e, "value", None)
        errors[key] = ("NVML error %d: %s" % (code, e)) if isinstance(code, int) else ("python: %s: %s" % (type(e).__name__, e))
        return None


def return_text(nv, ret):
    try:
        return text(nv.nvmlErrorString(ret))
    except Exception:
        return "NVML error %d" % ret


def field_value(nv, f):
    ret = f.nvmlReturn
    if ret != 0:
        return {"error": return_text(nv, ret), "code": ret}
    vt = f.valueType
    u = f.value
    if vt == 0:
        v = u.dVal
    elif vt == 1:
        v = u.uiVal
    elif vt == 2:
        v = u.ulVal
    elif vt == 3:
        v = u.ullVal
    elif vt == 4:
        v = u.sllVal
    elif vt == 5:
        v = u.siVal
    elif vt == 6:
        v = getattr(u, "usVal", u.uiVal & 0xFFFF)
    else:
        return {"error": "unknown value type %d" % vt}
    return {"value": v}


def read_fields(nv, h):
    """Plain field ids in one call, the scoped ones (id, scopeId) in another: pynvml versions
    before scope support reject the tuples, and that must not lose the plain ones."""
    out = {}
    for group in ([f for f in FIELDS if not isinstance(f, tuple)], [f for f in FIELDS if isinstance(f, tuple)]):
        try:
            values = nv.nvmlDeviceGetFieldValues(h, group)
        except Exception as e:
            for spec in group:
                key = "%d:%d" % spec if isinstance(spec, tuple) else str(spec)
                out[key] = err_text(e)
            continue
        for spec, f in zip(group, values):
            key = "%d:%d" % spec if isinstance(spec, tuple) else str(spec)
            out[key] = field_value(nv, f)
    return out


def memory(nv, h, values, errors):
    def v2():
        version = getattr(nv, "nvmlMemory_v2", None)
        if version is None:
            raise RuntimeError("this pynvml has no nvmlMemory_v2")
        return nv.nvmlDeviceGetMemoryInfo(h, version=version)

    m = attempt(errors, "memory_v2", v2)
    if m is None:
        m = attempt(errors, "memory", lambda: nv.nvmlDeviceGetMemoryInfo(h))
    if m is None:
        return
    values["memory_total"] = int(m.total)
    values["memory_used"] = int(m.used)
    values["memory_free"] = int(m.free)
    if hasattr(m, "reserved"):
        values["memory_reserved"] = int(m.reserved)


def processes(nv, h, errors):
    procs = attempt(errors, "processes", lambda: nv.nvmlDeviceGetComputeRunningProcesses(h))
    if procs is None:
        return None
    out = []
    for p in procs:
        used = getattr(p, "usedGpuMemory", None)
        if used is not None and int(used) >= NOT_AVAILABLE_64:
            used = None
        gi = getattr(p, "gpuInstanceId", None)
        ci = getattr(p, "computeInstanceId", None)
        out.append({
            "pid": int(p.pid),
            "used_memory": None if used is None else int(used),
            "gpu_instance_id": None if gi is None or gi == ALL_LINKS else int(gi),
            "compute_instance_id": None if ci is None or ci == ALL_LINKS else int(ci),
        })
    return out


class Gpm:
    """Two GPM samples of one GPU or MIG instance, taken a window apart."""

    def __init__(self, nv, parent, gi=None):
        self.nv, self.parent, self.gi = nv, parent, gi
        self.s1 = self.s2 = None
        self.out = {"supported": False}

    def start(self):
        nv = self.nv
        if not hasattr(nv, "nvmlGpmSampleGet"):
            self.out["error"] = "this pynvml has no GPM functions (nvidia-ml-py 11.525 or newer has them)"
            return
        try:
            if not nv.nvmlGpmQueryDeviceSupport(self.parent).isSupportedDevice:
                self.out["error"] = "GPM not supported on this GPU"
                return
            self.s1 = nv.nvmlGpmSampleAlloc()
            self.s2 = nv.nvmlGpmSampleAlloc()
            self.take(self.s1)
            self.t1 = time.time()
        except Exception as e:
            self.out["error"] = err_text(e)["error"]
            self.out["code"] = err_text(e).get("code")
            self.s1 = None

    def take(self, s):
        if self.gi is None:
            self.nv.nvmlGpmSampleGet(self.parent, s)
        else:
            self.nv.nvmlGpmMigSampleGet(self.parent, self.gi, s)

    def finish(self, ids):
        nv = self.nv
        if self.s1 is None:
            self.free()
            return self.out
        try:
            self.take(self.s2)
            span = time.time() - self.t1
            mg = nv.c_nvmlGpmMetricsGet_t()
            mg.version = nv.NVML_GPM_METRICS_GET_VERSION
            mg.numMetrics = len(ids)
            mg.sample1 = self.s1
            mg.sample2 = self.s2
            for i, mid in enumerate(ids):
                mg.metrics[i].metricId = mid
            nv.nvmlGpmMetricsGet(mg)
            metrics, errors = {}, {}
            for i, mid in enumerate(ids):
                m = mg.metrics[i]
                if m.nvmlReturn != 0:
                    errors[str(mid)] = return_text(nv, m.nvmlReturn)
                elif m.value != m.value or m.value in (float("inf"), float("-inf")):
                    errors[str(mid)] = "not a number"
                else:
                    metrics[str(mid)] = float(m.value)
            self.out = {"supported": True, "span_s": span, "metrics": metrics, "errors": errors}
        except Exception as e:
            self.out = {"supported": True, "error": err_text(e)["error"]}
        self.free()
        return self.out

    def free(self):
        for s in (self.s1, self.s2):
            if s is not None:
                try:
                    self.nv.nvmlGpmSampleFree(s)
                except Exception:
                    pass
        self.s1 = self.s2 = None


def process_utilization(nv, h, since_s, errors):
    try:
        samples = nv.nvmlDeviceGetProcessUtilization(h, int(since_s * 1e6))
    except Exception as e:
        if getattr(e, "value", None) == 6:  # NOT_FOUND: no sample in the window
            return []
        errors["process_utilization"] = err_text(e)["error"]
        return None
    acc = {}
    for s in samples:
        a = acc.setdefault(int(s.pid), [0, 0.0, 0.0])
        a[0] += 1
        a[1] += s.smUtil
        a[2] += s.memUtil
    return [{"pid": pid, "sm": a[1] / a[0], "mem": a[2] / a[0], "samples": a[0]} for pid, a in sorted(acc.items())]


def register_events(nv, h):
    out = {}
    try:
        supported = int(nv.nvmlDeviceGetSupportedEventTypes(h))
        out["supported_types"] = supported
        mask = supported & (EVENT_XID | EVENT_SBE | EVENT_DBE)
        if not mask:
            out["registered"] = False
            out["error"] = "no Xid or ECC event supported"
            return out
        es = nv.nvmlEventSetCreate()
        try:
            nv.nvmlDeviceRegisterEvents(h, mask, es)
            out["registered"] = True
        finally:
            nv.nvmlEventSetFree(es)
    except Exception as e:
        out["registered"] = False
        out["error"] = err_text(e)["error"]
    return out


def main(argv):
    gpm_seconds = 1.0
    events = False
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--gpm-seconds" and args:
            gpm_seconds = float(args.pop(0))
        elif a == "--events":
            events = True
        else:
            sys.stderr.write("usage: pynvml_read.py [--gpm-seconds S] [--events]\n")
            return 2
    try:
        import pynvml as nv
    except Exception as e:
        print(json.dumps({"ok": False, "stage": "import", "error": "import pynvml failed: %s" % e}))
        return 0
    try:
        nv.nvmlInit()
    except Exception as e:
        print(json.dumps({"ok": False, "stage": "init", "error": "nvmlInit failed: %s" % e}))
        return 0
    out = {"ok": True, "started_at": time.time(), "module": getattr(nv, "__file__", "pynvml"), "version": None, "gpus": []}
    try:
        out["version"] = text(nv.nvmlSystemGetNVMLVersion())
        out["driver_version"] = text(nv.nvmlSystemGetDriverVersion())
        count = nv.nvmlDeviceGetCount()
        gpms = []
        for index in range(count):
            h = nv.nvmlDeviceGetHandleByIndex(index)
            values, errors = {}, {}
            g = {"index": index, "uuid": text(nv.nvmlDeviceGetUUID(h)), "values": values, "errors": errors}
            # counters first, as close as possible to the exporter scrape before this run
            e = attempt(errors, "energy_mj", lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h))
            if e is not None:
                values["energy_mj"] = int(e)
            for key, policy in (("power_violation_ns", 0), ("thermal_violation_ns", 1)):
                v = attempt(errors, key, lambda: nv.nvmlDeviceGetViolationStatus(h, policy))
                if v is not None:
                    values[key] = int(v.violationTime)
            g["fields"] = read_fields(nv, h)
            g["read_at"] = time.time()
            memory(nv, h, values, errors)
            rows = attempt(errors, "remapped_rows", lambda: nv.nvmlDeviceGetRemappedRows(h))
            if rows is not None:
                values["remapped_correctable"], values["remapped_uncorrectable"], values["remapped_pending"], values["remapped_failure"] = (int(x) for x in rows)
            for key, counter in (("pcie_tx_kbps", 0), ("pcie_rx_kbps", 1)):
                v = attempt(errors, key, lambda: nv.nvmlDeviceGetPcieThroughput(h, counter))
                if v is not None:
                    values[key] = int(v)
            mode = attempt(errors, "mig_mode", lambda: nv.nvmlDeviceGetMigMode(h))
            mig_on = bool(mode is not None and mode[0] == 1)
            if mode is not None:
                values["mig_mode"] = int(mode[0])
            if events:
                g["events"] = register_events(nv, h)
            g["processes"] = None if mig_on else processes(nv, h, errors)
            g["mig"] = []
            if mig_on:
                slots = attempt(errors, "mig_slots", lambda: nv.nvmlDeviceGetMaxMigDeviceCount(h)) or 0
                for slot in range(slots):
                    try:
                        mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, slot)
                    except Exception:
                        continue
                    mv, me = {}, {}
                    m = {"index": slot, "uuid": text(nv.nvmlDeviceGetUUID(mh)), "values": mv, "errors": me}
                    m["gpu_instance_id"] = attempt(me, "gpu_instance_id", lambda: int(nv.nvmlDeviceGetGpuInstanceId(mh)))
                    m["compute_instance_id"] = attempt(me, "compute_instance_id", lambda: int(nv.nvmlDeviceGetComputeInstanceId(mh)))
                    memory(nv, mh, mv, me)
                    m["processes"] = processes(nv, mh, me)
                    g["mig"].append(m)
                    if m["gpu_instance_id"] is not None:
                        gpms.append((m, Gpm(nv, h, m["gpu_instance_id"]), GPM_MIG_METRICS))
            gpms.append((g, Gpm(nv, h), GPM_GPU_METRICS))
            out["gpus"].append((g, h))
        window_start = time.time()
        for _, gpm, _ in gpms:
            gpm.start()
        time.sleep(gpm_seconds)
        for target, gpm, ids in gpms:
            target["gpm"] = gpm.finish(ids)
        for g, h in out["gpus"]:
            if g["processes"] is not None:
                g["process_utilization"] = process_utilization(nv, h, window_start, g["errors"])
        out["gpus"] = [g for g, _ in out["gpus"]]
        out["finished_at"] = time.time()
    except Exception as e:
        out = {"ok": False, "stage": "read", "error": err_text(e)["error"]}
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
