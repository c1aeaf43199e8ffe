package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/berth-runtime/berth/test/testregistry"
)

// berth's goals for pods, each a ratio to containerd's number (not
// asserted: printed next to the numbers).
const (
	targetPodStart = 0.33 // pod to running container, median
	targetBurst    = 0.33 // many pods at once, until all run
	targetPodMem   = 0.4  // memory per pod
	targetIdleRSS  = 0.5  // daemon RSS before any pod
)

// podResult is what one runtime did in the pod benchmark.
type podResult struct {
	Name       string
	IdleRSS    int64
	Lifecycles []lifecycleSample
	Bursts     []burstResult // one per round
}

// burstSummary is the median over the rounds of each burst figure.
type burstSummary struct {
	Wall                    time.Duration
	PerPodMedian, PerPodMax time.Duration // over every pod of every round
	DaemonRSS               int64
	Shims                   int // the fewest found in a round
	ShimRSS, ShimPSS        int64
	PausePSS                int64
	PauseProcs              int
	MemPerPod               int64
	MemFreePerPod           int64   // the drop of MemFree, per pod
	MemInUsePerPod          int64   // inUsePerPod
	MemParts                []int64 // per pod, as memPartsPerPod, each the median over the rounds
	Removal                 time.Duration
}

func medianInt(vs []int64) int64 {
	ds := make([]time.Duration, len(vs))
	for i, v := range vs {
		ds[i] = time.Duration(v)
	}
	return int64(summarize(ds).Median)
}

func summarizeBursts(bs []burstResult) burstSummary {
	var s burstSummary
	if len(bs) == 0 {
		return s
	}
	var walls, perPod, removal []time.Duration
	var rss, shimRSS, shimPSS, pause, mem, free, inUse []int64
	parts := make([][]int64, len(memParts)+1)
	s.Shims = bs[0].Shims
	for _, b := range bs {
		walls = append(walls, b.Wall)
		perPod = append(perPod, b.PerPod...)
		removal = append(removal, b.Removal)
		rss = append(rss, b.DaemonRSS)
		shimRSS = append(shimRSS, b.Shim.RSS)
		shimPSS = append(shimPSS, b.Shim.PSS)
		pause = append(pause, b.Sandbox.PSS)
		mem = append(mem, b.memPerPod())
		free = append(free, b.dropPerPod("MemFree"))
		inUse = append(inUse, b.inUsePerPod())
		for i, v := range b.memPartsPerPod() {
			parts[i] = append(parts[i], v)
		}
		s.Shims = min(s.Shims, b.Shims)
		s.PauseProcs = max(s.PauseProcs, b.SandboxProcs)
	}
	pp := summarize(perPod)
	s.Wall, s.PerPodMedian, s.PerPodMax = summarize(walls).Median, pp.Median, pp.Max
	s.Removal = summarize(removal).Median
	s.DaemonRSS, s.ShimRSS, s.ShimPSS = medianInt(rss), medianInt(shimRSS), medianInt(shimPSS)
	s.PausePSS, s.MemPerPod, s.MemFreePerPod = medianInt(pause), medianInt(mem), medianInt(free)
	s.MemInUsePerPod = medianInt(inUse)
	for _, p := range parts {
		s.MemParts = append(s.MemParts, medianInt(p))
	}
	return s
}

// podReport is the pods section of docs/benchmarks.md. Results[0] is
// berthd, Results[1] containerd.
type podReport struct {
	Machine  machine
	Date     time.Time
	Versions map[string]string
	Options  podOptions
	Image    testregistry.ImageInfo
	Pause    testregistry.ImageInfo
	Subnet   string
	Results  []*podResult
	// ServerSeq and ServerBurst are berthd's own durations of each RPC
	// (its debug log), during the sequential lifecycles and the burst.
	ServerSeq, ServerBurst map[string][]time.Duration
	Problems               []string
}

func field(ls []lifecycleSample, f func(lifecycleSample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ls))
	for i, s := range ls {
		out[i] = f(s)
	}
	return out
}

var lifecycleFields = []struct {
	name string
	f    func(lifecycleSample) time.Duration
}{
	{"RunPodSandbox", func(s lifecycleSample) time.Duration { return s.Run }},
	{"CreateContainer", func(s lifecycleSample) time.Duration { return s.Create }},
	{"StartContainer", func(s lifecycleSample) time.Duration { return s.Start }},
	{"pod to running container", func(s lifecycleSample) time.Duration { return s.total() }},
}

// serverMethods are the RPCs whose server-side time is shown, in call order.
var serverMethods = []string{"RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func medP95(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s", ms(summarize(ds).Median), ms(percentile(ds, 95)))
}

func verdict(q, target float64) string {
	if q == 0 {
		return "-"
	}
	if q <= target {
		return "**met**"
	}
	return "**not met**"
}

// ratioText prints q with two decimals, or three when two would show it
// equal to a target it misses.
func ratioText(q, target float64) string {
	s := fmt.Sprintf("%.2f", q)
	if q > target && s == fmt.Sprintf("%.2f", target) {
		s = fmt.Sprintf("%.3f", q)
	}
	return s
}

func fratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (r podReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.Machine
	o := r.Options
	bd, cd := r.Results[0], r.Results[1]

	w("## Pods\n\n")
	w("berthd and containerd run side by side in one run of the benchmark, driven through CRI gRPC the way kubelet drives them, "+
		"with the same CNI configuration and the same images from the test registry. Each pod is what kubelet asks for a pod with one container: "+
		"`RunPodSandbox` with a cgroup parent (`%s/<runtime>/pod-<n>`), its own network and IPC namespaces and a PID namespace per container, "+
		"then `CreateContainer` and `StartContainer` of `%s` running `sleep 3600`, seccomp %s. "+
		"containerd runs each pod's sandbox as a pause container (`%s`: busybox running `sleep 2147483647`); berthd runs no process for the sandbox.\n\n",
		benchCgroup, imageRef(r.Image), o.seccomp, imageRef(r.Pause))

	w("| | |\n| --- | --- |\n")
	w("| date (UTC) | %s |\n", r.Date.UTC().Format("2006-01-02 15:04"))
	w("| machine | %s, kernel %s |\n", m.OS, m.Kernel)
	w("| CPU | %s, %d CPUs; load average %s before the first pod |\n", m.CPU, m.CPUs, m.LoadAvg)
	w("| memory | %s |\n", gib(m.MemoryBytes))
	w("| state dirs | berthd's under /run: %s; containerd's under the temp dir: %s |\n", m.RunFilesystem, m.Filesystem)
	w("| berthd | %s (per-pod monitor `berth-shim`) |\n", r.Versions["berthd"])
	w("| containerd | %s, shim `containerd-shim-runc-v2`, %s |\n", r.Versions["containerd"], r.Versions["runc"])
	w("| network | %s: `bridge` (no masquerade) with `host-local` on %s, `portmap` (no SNAT), `loopback` |\n", r.Versions["cni"], r.Subnet)
	w("| runs | %d lifecycles one at a time, and %d rounds of %d pods at once, per runtime |\n\n", o.lifecycles, o.rounds, o.burst)

	w("### One pod at a time\n\n")
	w("%d pod lifecycles per runtime, the runtimes taking turns. Each call is timed as the client sees it; "+
		"*pod to running container* is from the start of `RunPodSandbox` until `StartContainer` returned. "+
		"Each pod is then stopped and removed (`StopContainer`, `RemoveContainer`, `StopPodSandbox`, `RemovePodSandbox`) "+
		"and checked gone before the next one starts. Times in ms, median / p95.\n\n", o.lifecycles)
	w("| runtime |")
	for _, f := range lifecycleFields {
		w(" %s |", f.name)
	}
	w(" teardown, median |\n| --- |%s ---: |\n", strings.Repeat(" ---: |", len(lifecycleFields)))
	for _, res := range r.Results {
		w("| %s |", res.Name)
		for _, f := range lifecycleFields {
			w(" %s |", medP95(field(res.Lifecycles, f.f)))
		}
		w(" %s |\n", ms(summarize(field(res.Lifecycles, func(s lifecycleSample) time.Duration { return s.Teardown })).Median))
	}
	w("\n")
	if len(r.ServerSeq) > 0 {
		w("berthd's own time for each call (the `duration` of its debug log line), median / p95 in ms:\n\n")
		w("| phase |")
		for _, mth := range serverMethods {
			w(" %s |", mth)
		}
		w("\n| --- |%s\n", strings.Repeat(" ---: |", len(serverMethods)))
		for _, ph := range []struct {
			name string
			d    map[string][]time.Duration
		}{{"one pod at a time", r.ServerSeq}, {fmt.Sprintf("%d pods at once (all rounds)", o.burst), r.ServerBurst}} {
			w("| %s |", ph.name)
			for _, mth := range serverMethods {
				w(" %s |", medP95(ph.d[mth]))
			}
			w("\n")
		}
		w("\n")
	}

	w("### %d pods at once\n\n", o.burst)
	w("%d goroutines each run a pod, create its container and start it, all released at once; *all running* is the time until "+
		"`ContainerStatus` showed every container running. Memory is read %s later with the %d pods running: the daemon's RSS (VmRSS), "+
		"RSS and PSS of each per-pod shim (`/proc/PID/smaps_rollup`, averaged), and the drop in MemAvailable (`/proc/meminfo` "+
		"just before the first call minus with the pods running, divided by %d). Then all are removed, eight at a time. "+
		"This is done %d times per runtime, the runtimes taking turns; the table shows the median of the rounds "+
		"(one pod's start: over every pod of every round). Daemon RSS idle is read after the images were pulled, before any pod.\n\n",
		o.burst, settle, o.burst, o.burst, o.rounds)
	w("| runtime | all running (ms) | one pod's start, median / max (ms) | daemon RSS idle (MiB) | daemon RSS with %d pods (MiB) | shims | shim RSS (MiB) | shim PSS (MiB) | pause process PSS (MiB) | MemAvailable drop per pod (MiB) | removing all (ms) |\n", o.burst)
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	sums := make([]burstSummary, len(r.Results))
	for i, res := range r.Results {
		bu := summarizeBursts(res.Bursts)
		sums[i] = bu
		pause := "-"
		if bu.PauseProcs > 0 {
			pause = fmt.Sprintf("%.2f (%d)", mib(bu.PausePSS), bu.PauseProcs)
		}
		w("| %s | %d | %d / %d | %.1f | %.1f | %d | %.2f | %.2f | %s | %.2f | %d |\n", res.Name,
			bu.Wall.Milliseconds(), bu.PerPodMedian.Milliseconds(), bu.PerPodMax.Milliseconds(),
			mib(res.IdleRSS), mib(bu.DaemonRSS), bu.Shims, mib(bu.ShimRSS), mib(bu.ShimPSS), pause,
			mib(bu.MemPerPod), bu.Removal.Milliseconds())
	}
	w("\n")
	writeMemParts(w, r.Results, sums)
	if o.rounds > 1 {
		w("Every round (all running in ms; MemAvailable drop per pod in MiB):\n\n| round |")
		for _, res := range r.Results {
			w(" %s all running | %s MemAvailable drop |", res.Name, res.Name)
		}
		w("\n| --- |%s\n", strings.Repeat(" ---: |", 2*len(r.Results)))
		for i := 0; i < o.rounds; i++ {
			w("| %d |", i+1)
			for _, res := range r.Results {
				if i < len(res.Bursts) {
					w(" %d | %.2f |", res.Bursts[i].Wall.Milliseconds(), mib(res.Bursts[i].memPerPod()))
				} else {
					w(" | |")
				}
			}
			w("\n")
		}
		w("\n")
	}

	w("### Targets\n\n")
	w("Ratios are berthd / containerd; the targets are goals, not assertions.\n\n")
	w("| | berthd | containerd | ratio | target | |\n| --- | ---: | ---: | ---: | ---: | --- |\n")
	total := func(res *podResult) time.Duration {
		return summarize(field(res.Lifecycles, func(s lifecycleSample) time.Duration { return s.total() })).Median
	}
	row := func(name, a, c string, q, target float64) {
		w("| %s | %s | %s | %s | ≤ %.2f | %s |\n", name, a, c, ratioText(q, target), target, verdict(q, target))
	}
	row("pod to running container, median", ms(total(bd))+" ms", ms(total(cd))+" ms", ratio(total(bd), total(cd)), targetPodStart)
	sb, sc := sums[0], sums[1]
	row(fmt.Sprintf("%d pods at once, all running", o.burst), fmt.Sprintf("%d ms", sb.Wall.Milliseconds()),
		fmt.Sprintf("%d ms", sc.Wall.Milliseconds()), ratio(sb.Wall, sc.Wall), targetBurst)
	row("memory per pod: MemAvailable drop", fmt.Sprintf("%.2f MiB", mib(sb.MemPerPod)), fmt.Sprintf("%.2f MiB", mib(sc.MemPerPod)),
		fratio(sb.MemPerPod, sc.MemPerPod), targetPodMem)
	row("memory per pod: in use (MemFree drop less the free pages on per-CPU lists)", fmt.Sprintf("%.2f MiB", mib(sb.MemInUsePerPod)),
		fmt.Sprintf("%.2f MiB", mib(sc.MemInUsePerPod)), fratio(sb.MemInUsePerPod, sc.MemInUsePerPod), targetPodMem)
	row("memory per pod: shim PSS", fmt.Sprintf("%.2f MiB", mib(sb.ShimPSS)), fmt.Sprintf("%.2f MiB", mib(sc.ShimPSS)),
		fratio(sb.ShimPSS, sc.ShimPSS), targetPodMem)
	bdPod, cdPod := sb.ShimPSS+sb.PausePSS, sc.ShimPSS+sc.PausePSS
	row("memory per pod: PSS of shim and pause process", fmt.Sprintf("%.2f MiB", mib(bdPod)), fmt.Sprintf("%.2f MiB", mib(cdPod)),
		fratio(bdPod, cdPod), targetPodMem)
	row("daemon RSS idle", fmt.Sprintf("%.1f MiB", mib(bd.IdleRSS)), fmt.Sprintf("%.1f MiB", mib(cd.IdleRSS)),
		fratio(bd.IdleRSS, cd.IdleRSS), targetIdleRSS)
	w("\n")

	w("### Teardown\n\n")
	npods := 0
	for _, res := range r.Results {
		npods += len(res.Lifecycles)
		for _, b := range res.Bursts {
			npods += b.Pods
		}
	}
	if len(r.Problems) == 0 {
		w("All %d pods were removed completely: after `RemovePodSandbox` neither pod nor container was listed, the shim had exited, "+
			"no process was left in the pod's cgroup and no cgroup below it (nor berthd's `%s/<pod>`), the IP lease was released, "+
			"nothing mounted named the pod or its container, and no veth was left on the bridge.\n\n", npods, berthShimCgroup)
	} else {
		w("Checks after `RemovePodSandbox` (pod and container unlisted, shim exited, cgroups empty and berthd's `%s/<pod>` gone, "+
			"IP lease released, no mount naming the pod, no veth left) found %d problem(s) over %d pods:\n\n", berthShimCgroup, len(r.Problems), npods)
		const show = 20
		for i, p := range r.Problems {
			if i == show {
				w("- … and %d more\n", len(r.Problems)-show)
				break
			}
			w("- %s\n", p)
		}
		w("\n")
	}

	w("Notes:\n\n")
	w("- berthd: log level debug, `network.plugin_dirs = [\"%s\"]`, per-pod monitors in `%s/<pod>` (its default), `daemon_cgroup = \"\"` (it stays in the benchmark's cgroup, as containerd does), state dir `/run/berth-bench-<random>` (a monitor's socket, `<state_dir>/shims/<pod id>/shim.sock`, must fit a unix socket address, so the state dir can have at most 25 bytes).\n", cniPluginDir, berthShimCgroup)
	w("- containerd: CRI plugin with `runtime_type = \"io.containerd.runc.v2\"` (one shim per pod), cgroupfs (`systemd_cgroup = false`, `SystemdCgroup = false`), overlayfs snapshotter, `restrict_oom_score_adj = true`, runc state and network namespaces under its temp dir, log level debug; the container's output is copied to its log file by containerd itself, berthd's by its shim.\n")
	w("- Both read the same conflist from one directory; both pull `%s` (containerd also the pause image) before anything is timed.\n", imageRef(r.Image))
	w("- Shim PSS counts each shim's share of pages shared with the other shims (the binary's code, mostly), so it is the memory a shim adds; RSS counts those pages in full. The pause process column is containerd's sandbox container, which berthd does not have; the container's own `sleep` is the same for both and is in neither column.\n")
	w("- MemAvailable is the whole machine's: it counts everything a pod costs (shim, pause process, container, network namespace and veth, mounts, page cache of the files written, kernel memory) and anything else that ran on the machine meanwhile, so it is noisier than PSS.\n")
	w("- Reproduce with `make bench`, or only this section with `go run ./test/bench --only pods` (as root); `--pod-seccomp runtime-default` gives every container the runtime's default seccomp profile instead.\n")
	return b.String()
}

// rpcLine matches berthd's debug line for a finished RPC (logrus text
// format): msg=rpc with method= and duration= fields.
var (
	rpcMsg      = regexp.MustCompile(`\bmsg=(rpc|"rpc")(\s|$)`)
	rpcMethod   = regexp.MustCompile(`\bmethod="?([A-Za-z]+)"?`)
	rpcDuration = regexp.MustCompile(`\bduration="?([0-9.]+[a-zµ]+)"?`)
)

// rpcDurations collects berthd's own RPC durations, by method, from the
// part [from, to) of its log.
func rpcDurations(path string, from, to int64) (map[string][]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseRPCDurations(io.NewSectionReader(f, from, to-from))
}

func parseRPCDurations(r io.Reader) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !rpcMsg.MatchString(line) {
			continue
		}
		mm, dm := rpcMethod.FindStringSubmatch(line), rpcDuration.FindStringSubmatch(line)
		if mm == nil || dm == nil {
			continue
		}
		d, err := time.ParseDuration(dm[1])
		if err != nil {
			continue
		}
		out[mm[1]] = append(out[mm[1]], d)
	}
	return out, sc.Err()
}

// writeMemParts writes where each runtime's memory per pod went, by the
// counters of /proc/meminfo.
func writeMemParts(w func(string, ...any), results []*podResult, sums []burstSummary) {
	w("Where the memory of a pod went, from the growth of the counters of `/proc/meminfo` over the same interval (MiB per pod, each the median over the rounds). " +
		"*free, in per-CPU lists* is free memory all the same (from `/proc/zoneinfo`): the kernel moves pages between those lists and MemFree as CPUs allocate and free, and MemAvailable does not count them either, which is most of the noise of the MemAvailable drop. " +
		"*rest* is MemFree's drop that no counter here shows: vmalloc areas other than kernel stacks, and pages the kernel took for itself directly.\n\n")
	w("| runtime | MemAvailable drop | MemFree drop |")
	for _, p := range memParts {
		w(" %s |", p.name)
	}
	w(" rest |\n| --- | ---: | ---: |%s\n", strings.Repeat(" ---: |", len(memParts)+1))
	for i, res := range results {
		w("| %s | %.2f | %.2f |", res.Name, mib(sums[i].MemPerPod), mib(sums[i].MemFreePerPod))
		for _, v := range sums[i].MemParts {
			w(" %.2f |", mib(v))
		}
		w("\n")
	}
	w("\n")
}
