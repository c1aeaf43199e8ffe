package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/test/mountinfo"
	"github.com/berth-runtime/berth/test/testnet"
)

type podOptions struct {
	lifecycles int           // sequential lifecycles per runtime
	burst      int           // pods started at once per runtime
	rounds     int           // how many times, per runtime
	seccomp    string        // "unconfined" or "runtime-default"
	timeout    time.Duration // one lifecycle, or one burst
}

// settle is how long the benchmark waits before reading memory, so that
// what the last calls allocated and freed has settled (Go's scavenger
// returns freed memory in the background).
const settle = 2 * time.Second

// goneTimeout bounds the wait for a removed pod's processes, cgroups and
// veth to disappear: shims exit and the kernel frees network namespaces
// asynchronously.
const goneTimeout = 10 * time.Second

// podRuntime is one runtime in the pod benchmark.
type podRuntime struct {
	*runtimeUnderTest
	cgroupName string // its part of /berth-bench
	shimExe    string // executable name of its per-pod monitor
	podFlag    string // the shim's flag that names its pod
	imageRef   string // the container image as PullImage answered (image ID)
	userImage  string // the name the image was pulled by
	seccomp    *runtimeapi.SecurityProfile
	net        *podNetwork

	mu       sync.Mutex
	next     int
	live     map[string]*benchPod // created and not yet removed
	ever     []string             // every pod ID it ever answered
	problems []string             // teardown checks that failed
}

// benchPod is one pod the benchmark runs.
type benchPod struct {
	n            int
	id, ctr      string
	cfg          *runtimeapi.PodSandboxConfig
	cgroupParent string
}

// podTiming is the client's view of one pod start.
type podTiming struct {
	Run, Create, Start time.Duration
}

func (t podTiming) total() time.Duration { return t.Run + t.Create + t.Start }

func (r *podRuntime) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "bench: %s: teardown check: %s\n", r.name, msg)
	r.mu.Lock()
	r.problems = append(r.problems, msg)
	r.mu.Unlock()
}

// newPod prepares a pod's config: what kubelet sends for a pod with one
// container, without port mappings or resources. Its log directory is made
// here, as kubelet does before RunPodSandbox.
func (r *podRuntime) newPod() (*benchPod, error) {
	r.mu.Lock()
	r.next++
	n := r.next
	r.mu.Unlock()
	name := fmt.Sprintf("bench-%d", n)
	uid := testnet.RandHex(16)
	logDir := filepath.Join(r.dir, "pod-logs", "berth-bench_"+name+"_"+uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	p := &benchPod{n: n, cgroupParent: fmt.Sprintf("%s/%s/pod-%d", benchCgroup, r.cgroupName, n)}
	p.cfg = &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Uid: uid, Namespace: "berth-bench"},
		Hostname:     name,
		LogDirectory: logDir,
		Labels: map[string]string{
			"io.kubernetes.pod.name":      name,
			"io.kubernetes.pod.namespace": "berth-bench",
			"io.kubernetes.pod.uid":       uid,
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: p.cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaces(),
				Seccomp:          r.seccomp,
			},
		},
	}
	return p, nil
}

// namespaces are kubelet's for a pod that does not share its process
// namespace: network and IPC per pod, PID per container.
func namespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
}

func (r *podRuntime) containerConfig(p *benchPod) *runtimeapi.ContainerConfig {
	md := p.cfg.GetMetadata()
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    &runtimeapi.ImageSpec{Image: r.imageRef, UserSpecifiedImage: r.userImage},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep/0.log",
		Labels: map[string]string{
			"io.kubernetes.container.name": "sleep",
			"io.kubernetes.pod.name":       md.GetName(),
			"io.kubernetes.pod.namespace":  md.GetNamespace(),
			"io.kubernetes.pod.uid":        md.GetUid(),
		},
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: namespaces(),
				Seccomp:          r.seccomp,
			},
		},
	}
}

// startPod runs the pod, creates its container and starts it, timing each
// call as the client sees it.
func (r *podRuntime) startPod(ctx context.Context, p *benchPod) (podTiming, error) {
	var t podTiming
	t0 := time.Now()
	rp, err := r.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: p.cfg})
	t1 := time.Now()
	t.Run = t1.Sub(t0)
	if err != nil {
		return t, fmt.Errorf("RunPodSandbox %s: %w", p.cfg.GetMetadata().GetName(), err)
	}
	p.id = rp.GetPodSandboxId()
	r.mu.Lock()
	r.live[p.id] = p
	r.ever = append(r.ever, p.id)
	r.mu.Unlock()
	cc, err := r.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.id, Config: r.containerConfig(p), SandboxConfig: p.cfg,
	})
	t2 := time.Now()
	t.Create = t2.Sub(t1)
	if err != nil {
		return t, fmt.Errorf("CreateContainer in pod %s: %w", p.id, err)
	}
	p.ctr = cc.GetContainerId()
	if _, err := r.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.ctr}); err != nil {
		t.Start = time.Since(t2)
		return t, fmt.Errorf("StartContainer %s: %w", p.ctr, err)
	}
	t.Start = time.Since(t2)
	return t, nil
}

// waitRunning polls ContainerStatus until the container runs.
func (r *podRuntime) waitRunning(ctx context.Context, ctr string) error {
	for {
		st, err := r.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr})
		if err != nil {
			return fmt.Errorf("ContainerStatus %s: %w", ctr, err)
		}
		s := st.GetStatus()
		switch s.GetState() {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			return nil
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			return fmt.Errorf("container %s exited (code %d, %s: %s) instead of running", ctr, s.GetExitCode(), s.GetReason(), s.GetMessage())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s not running: %w", ctr, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// teardown stops and removes the pod as kubelet does: the container first
// (at once: `sleep` as PID 1 ignores SIGTERM), then the pod.
func (r *podRuntime) teardown(ctx context.Context, p *benchPod) error {
	if p.ctr != "" {
		if _, err := r.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: p.ctr, Timeout: 0}); err != nil {
			return fmt.Errorf("StopContainer %s: %w", p.ctr, err)
		}
		if _, err := r.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: p.ctr}); err != nil {
			return fmt.Errorf("RemoveContainer %s: %w", p.ctr, err)
		}
	}
	if p.id == "" {
		return nil
	}
	if _, err := r.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("StopPodSandbox %s: %w", p.id, err)
	}
	if _, err := r.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("RemovePodSandbox %s: %w", p.id, err)
	}
	r.mu.Lock()
	delete(r.live, p.id)
	r.mu.Unlock()
	return nil
}

// isShim reports whether p is one of this daemon's per-pod shims: the
// runtime's shim executable, started for this daemon (its arguments name
// the daemon's state dir or socket), and below the benchmark on its parent
// chain.
func (r *podRuntime) isShim(p procInfo, byPID map[int]procInfo) bool {
	return !p.zombie() && p.exe() == r.shimExe &&
		strings.Contains(strings.Join(p.Argv, " "), r.stateDir+"/") &&
		descendsFrom(p, byPID, os.Getpid())
}

// shims lists the daemon's live shims.
func (r *podRuntime) shims() ([]procInfo, map[int]procInfo, error) {
	ps, err := listProcs()
	if err != nil {
		return nil, nil, err
	}
	byPID := indexByPID(ps)
	var out []procInfo
	for _, p := range ps {
		if r.isShim(p, byPID) {
			out = append(out, p)
		}
	}
	return out, byPID, nil
}

// checkGone verifies that nothing of a removed pod is left: the runtime
// lists neither pod nor container, its shim has exited, its cgroups are
// gone (berthd's /berth/shims/<pod> too), its IP lease is released and
// nothing mounted names it. Failures are recorded, not returned: the
// numbers are still worth having, with the failure next to them.
func (r *podRuntime) checkGone(ctx context.Context, p *benchPod) {
	if p.id == "" {
		return
	}
	name := p.cfg.GetMetadata().GetName()
	if l, err := r.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: p.id}}); err != nil {
		r.problem("ListPodSandbox after removing %s: %v", name, err)
	} else if len(l.GetItems()) > 0 {
		r.problem("pod %s (%s) still listed after RemovePodSandbox", name, p.id)
	}
	if l, err := r.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: p.id}}); err != nil {
		r.problem("ListContainers after removing %s: %v", name, err)
	} else if len(l.GetContainers()) > 0 {
		r.problem("%d containers of pod %s still listed after RemovePodSandbox", len(l.GetContainers()), name)
	}

	deadline := time.Now().Add(goneTimeout)
	var left []string
	for {
		left = left[:0]
		shims, _, err := r.shims()
		if err != nil {
			left = append(left, err.Error())
		}
		for _, s := range shims {
			if s.arg(r.podFlag) == p.id {
				left = append(left, fmt.Sprintf("shim pid %d still running", s.PID))
			}
		}
		for _, cg := range r.podCgroups(p) {
			t, err := inspectCgroup(cg)
			if err != nil {
				left = append(left, err.Error())
				continue
			}
			if len(t.Procs) > 0 {
				left = append(left, fmt.Sprintf("%d processes in cgroup %s", len(t.Procs), cg))
			}
			if cg != p.cgroupParent && t.Hierarchies > 0 {
				left = append(left, fmt.Sprintf("cgroup %s still exists", cg))
			} else if len(t.Children) > 0 {
				left = append(left, fmt.Sprintf("cgroups left below %s: %s", cg, strings.Join(t.Children, ", ")))
			}
		}
		if ls := r.net.LeasesOf(p.id); len(ls) > 0 {
			left = append(left, fmt.Sprintf("IP lease %s not released", strings.Join(ls, ", ")))
		}
		if ms := mountsNaming(p.id, p.ctr); len(ms) > 0 {
			left = append(left, fmt.Sprintf("still mounted: %s", strings.Join(ms, ", ")))
		}
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range left {
		r.problem("pod %s (%s): %s", name, p.id, l)
	}
}

// podCgroups are the cgroups a pod's removal must leave empty: its parent
// (kubelet's to remove, so it may stay, but with nothing below it) and, for
// berthd, the monitor's cgroup.
func (r *podRuntime) podCgroups(p *benchPod) []string {
	out := []string{p.cgroupParent}
	if r.shimExe == "berth-shim" {
		out = append(out, berthShimCgroup+"/"+p.id)
	}
	return out
}

// mountsNaming lists the mount points whose path contains any of ids.
func mountsNaming(ids ...string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := mountinfo.Unescape(f[4])
		for _, id := range ids {
			if id != "" && strings.Contains(mp, id) {
				out = append(out, mp)
				break
			}
		}
	}
	return out
}

// lifecycleSample is one sequential pod lifecycle.
type lifecycleSample struct {
	podTiming
	Teardown time.Duration // stop and remove, for information
}

// lifecycle starts one pod with its container, checks it runs, tears it
// down and checks that nothing is left.
func (r *podRuntime) lifecycle(ctx context.Context, o podOptions) (lifecycleSample, error) {
	var s lifecycleSample
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	p, err := r.newPod()
	if err != nil {
		return s, err
	}
	s.podTiming, err = r.startPod(ctx, p)
	if err != nil {
		return s, err
	}
	if err := r.waitRunning(ctx, p.ctr); err != nil {
		return s, err
	}
	t := time.Now()
	if err := r.teardown(ctx, p); err != nil {
		return s, err
	}
	s.Teardown = time.Since(t)
	r.checkGone(ctx, p)
	return s, nil
}

// burstResult is what starting many pods at once showed.
type burstResult struct {
	Pods      int
	Wall      time.Duration   // from the first call until every container ran
	PerPod    []time.Duration // each pod's own start, RunPodSandbox to running
	DaemonRSS int64
	Shims     int     // shim processes found
	Shim      procMem // average per shim
	// Sandbox is the average memory of the per-pod processes besides the
	// shim and the container (containerd's pause process); SandboxProcs
	// counts them.
	Sandbox         procMem
	SandboxProcs    int
	MemBefore       meminfo       // just before the first call
	MemAfter        meminfo       // with the pods running
	Removal         time.Duration // removing all of them, for information
	RemovalFailures int
}

// memPerPod is the drop of MemAvailable per pod.
func (b burstResult) memPerPod() int64 { return b.dropPerPod("MemAvailable") }

// dropPerPod is how much a /proc/meminfo field fell per pod (a counter
// that grew gives a negative drop; see memParts for those that grow).
func (b burstResult) dropPerPod(field string) int64 {
	if b.Pods == 0 {
		return 0
	}
	return (b.MemBefore[field] - b.MemAfter[field]) / int64(b.Pods)
}

// inUsePerPod is the memory a pod took out of the free pages: the drop of
// MemFree, less the free pages that only moved to the per-CPU lists.
func (b burstResult) inUsePerPod() int64 { return b.dropPerPod("MemFree") + b.dropPerPod(pcpFree) }

// memPart is one use of memory that /proc/meminfo counts, by its fields.
type memPart struct {
	name   string
	fields []string
}

// memParts split the drop of MemFree into what took it. Cached includes
// Shmem. Free pages that moved to the per-CPU lists left MemFree without
// being used: they are free still, but MemAvailable misses them too, and
// the kernel keeps up to tens of MiB there, so they swing the drop by
// about a MiB per pod from one round to the next. Whatever none of these
// counts is the rest: pages the kernel took directly, and vmalloc areas
// (VmallocUsed also counts the kernel stacks, so it is not a part here).
var memParts = []memPart{
	{"anonymous", []string{"AnonPages"}},
	{"slab", []string{"Slab"}},
	{"kernel stacks", []string{"KernelStack"}},
	{"page tables", []string{"PageTables"}},
	{"per-CPU data", []string{"Percpu"}},
	{"page cache", []string{"Cached", "Buffers"}},
	{"free, in per-CPU lists", []string{pcpFree}},
}

// memPartsPerPod is the growth of each part per pod, and last the rest of
// MemFree's drop.
func (b burstResult) memPartsPerPod() []int64 {
	out := make([]int64, 0, len(memParts)+1)
	rest := b.dropPerPod("MemFree")
	for _, p := range memParts {
		var grew int64
		for _, f := range p.fields {
			grew -= b.dropPerPod(f)
		}
		out = append(out, grew)
		rest -= grew
	}
	return append(out, rest)
}

// burst starts n pods at once, one goroutine each, and measures the time
// until all containers run and the memory they take; then removes them.
func (r *podRuntime) burst(ctx context.Context, o podOptions) (burstResult, error) {
	res := burstResult{Pods: o.burst}
	pods := make([]*benchPod, o.burst)
	for i := range pods {
		p, err := r.newPod()
		if err != nil {
			return res, err
		}
		pods[i] = p
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	before, err := readMeminfo()
	if err != nil {
		return res, err
	}
	res.MemBefore = before
	begin := make(chan struct{})
	var t0 time.Time
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	res.PerPod = make([]time.Duration, len(pods))
	ends := make([]time.Duration, len(pods))
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			mine := time.Now()
			if _, err := r.startPod(ctx, p); err != nil {
				errs[i] = err
				return
			}
			if err := r.waitRunning(ctx, p.ctr); err != nil {
				errs[i] = err
				return
			}
			now := time.Now()
			res.PerPod[i] = now.Sub(mine)
			ends[i] = now.Sub(t0)
		}()
	}
	t0 = time.Now()
	close(begin)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		n := 0
		for _, e := range errs {
			if e != nil {
				n++
			}
		}
		return res, fmt.Errorf("%d of %d pods failed to start; first: %w", n, len(pods), firstError(errs))
	}
	res.Wall = slices.Max(ends)

	time.Sleep(settle)
	if err := r.measurePods(&res); err != nil {
		return res, err
	}

	// Remove them all, eight at a time, as a node draining would.
	t := time.Now()
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	for _, p := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.teardown(ctx, p); err != nil {
				r.problem("removing %s: %v", p.cfg.GetMetadata().GetName(), err)
				mu.Lock()
				res.RemovalFailures++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Removal = time.Since(t)
	for _, p := range pods {
		r.checkGone(ctx, p)
	}
	return res, nil
}

func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// measurePods reads the memory with the burst's pods running: MemAvailable,
// the daemon's RSS, and RSS and PSS of every shim and pause process.
func (r *podRuntime) measurePods(res *burstResult) error {
	after, err := readMeminfo()
	if err != nil {
		return err
	}
	res.MemAfter = after
	m, err := processMemory(r.pid())
	if err != nil {
		return fmt.Errorf("%s memory: %w", r.name, err)
	}
	res.DaemonRSS = m.RSS
	shims, byPID, err := r.shims()
	if err != nil {
		return err
	}
	res.Shims = len(shims)
	shimPIDs := map[int]bool{}
	var sum procMem
	for _, s := range shims {
		shimPIDs[s.PID] = true
		m, err := smapsRollup(s.PID)
		if err != nil {
			return fmt.Errorf("shim %d: %w", s.PID, err)
		}
		sum.RSS += m.RSS
		sum.PSS += m.PSS
	}
	if len(shims) > 0 {
		res.Shim = procMem{RSS: sum.RSS / int64(len(shims)), PSS: sum.PSS / int64(len(shims))}
	}
	// containerd's pause processes: the sandbox image's command, children
	// of one of its shims.
	sum = procMem{}
	for _, p := range byPID {
		if !shimPIDs[p.PPID] || !slices.Equal(p.Argv, pauseArgv) {
			continue
		}
		m, err := smapsRollup(p.PID)
		if err != nil {
			continue
		}
		res.SandboxProcs++
		sum.RSS += m.RSS
		sum.PSS += m.PSS
	}
	if res.SandboxProcs > 0 {
		res.Sandbox = procMem{RSS: sum.RSS / int64(res.SandboxProcs), PSS: sum.PSS / int64(res.SandboxProcs)}
	}
	return nil
}

// pauseArgv is the pause image's command (test/testregistry's catalog).
var pauseArgv = []string{"/bin/sleep", "2147483647"}

// removeAllPods removes every pod the runtime still has, through CRI: all
// of them are the benchmark's, since the daemon has a root of its own.
func (r *podRuntime) removeAllPods() error {
	if r.rt == nil || r.cmd == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := r.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	var errs []error
	for _, p := range l.GetItems() {
		fmt.Fprintf(os.Stderr, "bench: cleanup: removing %s pod %s\n", r.name, p.GetId())
		if _, err := r.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("StopPodSandbox %s: %w", p.GetId(), err))
		}
		if _, err := r.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("RemovePodSandbox %s: %w", p.GetId(), err))
		}
	}
	return errors.Join(errs...)
}

// killStrayShims kills, by PID, the shims of this daemon still running
// after it stopped (pods it could not remove), and returns how many.
func (r *podRuntime) killStrayShims() (int, error) {
	shims, _, err := r.shims()
	if err != nil {
		return 0, err
	}
	for _, s := range shims {
		fmt.Fprintf(os.Stderr, "bench: cleanup: killing %s shim pid %d (%s)\n", r.name, s.PID, strings.Join(s.Argv, " "))
		if err := syscall.Kill(s.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return len(shims), err
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		left, _, _ := r.shims()
		if len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return len(shims), nil
}

// removeShimCgroups removes berthd's /berth/shims/<pod> of every pod the
// benchmark made that berthd left behind.
func (r *podRuntime) removeShimCgroups() error {
	if r.shimExe != "berth-shim" {
		return nil
	}
	var errs []error
	for _, id := range r.ever {
		p := berthShimCgroup + "/" + id
		if t, err := inspectCgroup(p); err == nil && t.Hierarchies > 0 {
			fmt.Fprintf(os.Stderr, "bench: cleanup: removing %s (%d processes)\n", p, len(t.Procs))
			if err := cgroups.Remove(p, true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// berthd's parents of those, once empty: berthd makes them again when
	// it needs them, and a berthd serving the node keeps its monitors in
	// them, so they are not empty then.
	for _, p := range []string{berthShimCgroup, path.Dir(berthShimCgroup)} {
		if t, err := inspectCgroup(p); err == nil && t.Hierarchies > 0 && len(t.Children) == 0 && len(t.Procs) == 0 {
			if err := cgroups.Remove(p, false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
