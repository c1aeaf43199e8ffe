package server

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/pkg/netns"
	"github.com/berth-runtime/berth/server/store"
)

// statsInterval is how often the collector samples every running container
// and pod. A variable so that tests can shorten it.
var statsInterval = 10 * time.Second

// statsFresh is the age past which a stats RPC re-reads a container's
// cgroup counters instead of answering the collector's sample. crictl
// computes CPU% from two calls one second apart and refuses two answers
// with the same timestamp; the counters are a few small files, while the
// writable layer walk and the network namespace visit stay collector-only.
var statsFresh = 500 * time.Millisecond

// ctrSample is what the collector last learned of a running container.
type ctrSample struct {
	at      time.Time     // when cg was read
	cg      cgroups.Stats // zero if the cgroup could not be read
	cgOK    bool          // cg holds a reading
	rate    uint64        // CPU nanocores since the reading before
	hasRate bool          // there was a reading before
	fsAt    time.Time     // when fs was measured; zero if never
	fs      writableLayer // usage of the upper dir
	procs   processUsage  // measured with fs
	io      []cgroups.IO  // measured with fs
}

// writableLayer is the disk a container's upper dir uses.
type writableLayer struct {
	mountpoint string
	bytes      uint64
	inodes     uint64
	// The filesystem holding it: its size and inodes, from statfs.
	fsBytes, fsInodes, fsInodesFree uint64
}

// podNetSample is a pod's network counters, read in its namespace.
type podNetSample struct {
	at     time.Time
	ifaces []netDevStats
}

// statsCollector keeps recent samples so that stats RPCs answer without
// walking directories or entering namespaces.
type statsCollector struct {
	s *Server

	mu   sync.Mutex
	ctrs map[string]*ctrSample    // by container ID
	nets map[string]*podNetSample // by pod ID

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newStatsCollector(s *Server) *statsCollector {
	return &statsCollector{
		s:    s,
		ctrs: map[string]*ctrSample{},
		nets: map[string]*podNetSample{},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// run samples everything every statsInterval until close.
func (c *statsCollector) run() {
	defer close(c.done)
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.collectAll()
		}
	}
}

// close stops run and waits for it to return; safe to call more than once.
func (c *statsCollector) close() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// Close ends the server's long-lived work: event streams and the stats
// collector. Calling it again does nothing.
func (s *Server) Close() {
	s.events.close()
	if s.ports != nil {
		s.ports.CloseAll()
	}
	if s.stats != nil {
		s.stats.close()
	}
}

// collectAll samples every running container and every pod with a network
// namespace, and forgets what no longer runs.
func (c *statsCollector) collectAll() {
	running := map[string]bool{}
	podsSeen := map[string]bool{}
	for _, pod := range c.s.store.Pods() {
		if pod.Phase == store.PodCreating {
			continue
		}
		for _, ctr := range c.s.store.Containers(pod.ID) {
			if ctr.State != store.ContainerRunning {
				continue
			}
			running[ctr.ID] = true
			c.sampleContainer(ctr, pod, true)
		}
		if pod.Phase == store.PodReady {
			podsSeen[pod.ID] = true
			c.sampleNetwork(pod)
		}
	}
	c.mu.Lock()
	for id := range c.ctrs {
		if !running[id] {
			delete(c.ctrs, id)
		}
	}
	for id := range c.nets {
		if !podsSeen[id] {
			delete(c.nets, id)
		}
	}
	c.mu.Unlock()
}

// sampleContainer reads a container's cgroup counters and, with walk, the
// usage of its writable layer, and stores the result.
func (c *statsCollector) sampleContainer(ctr *store.Container, pod *store.Pod, walk bool) *ctrSample {
	now := time.Now()
	var cg cgroups.Stats
	var cgErr error
	if p, err := containerCgroup(c.s.cfg.CgroupDriver, pod.CgroupPath, ctr.ID); err != nil {
		cgErr = err
	} else {
		cg, cgErr = cgroups.ReadStats(p)
	}
	var fsu writableLayer
	var fsErr error
	var pu processUsage
	var ios []cgroups.IO
	if walk {
		fsu, fsErr = dirUsage(filepath.Join(ctr.DataDir, "upper"))
		fsu.mountpoint = ctr.DataDir
		var sfs syscall.Statfs_t
		if syscall.Statfs(ctr.DataDir, &sfs) == nil {
			fsu.fsBytes = sfs.Blocks * uint64(sfs.Bsize)
			fsu.fsInodes, fsu.fsInodesFree = sfs.Files, sfs.Ffree
		}
		if p, err := containerCgroup(c.s.cfg.CgroupDriver, pod.CgroupPath, ctr.ID); err == nil {
			pu = cgroupProcessUsage(p)
			ios, _ = cgroups.ReadIO(p)
		}
	}
	if cgErr != nil && !errors.Is(cgErr, fs.ErrNotExist) {
		c.s.log.WithError(cgErr).Debugf("stats: container %s cgroup", ctr.ID)
	}
	if fsErr != nil {
		c.s.log.WithError(fsErr).Debugf("stats: container %s writable layer", ctr.ID)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.ctrs[ctr.ID]
	smp := &ctrSample{}
	if old != nil {
		*smp = *old
	}
	if cgErr == nil {
		if old != nil && old.cgOK {
			smp.rate, smp.hasRate = cpuRate(old.cg.CPUUsageNanos, old.at, cg.CPUUsageNanos, now)
		}
		smp.at, smp.cg, smp.cgOK = now, cg, true
	}
	if walk && fsErr == nil {
		smp.fsAt, smp.fs, smp.procs, smp.io = now, fsu, pu, ios
	}
	c.ctrs[ctr.ID] = smp
	cp := *smp
	return &cp
}

// container returns a running container's sample: sampled now (walk
// included) if the collector has not seen it yet, its counters re-read if
// older than statsFresh, else as cached.
func (c *statsCollector) container(ctr *store.Container, pod *store.Pod) *ctrSample {
	return c.containerNoOlderThan(ctr, pod, statsFresh)
}

// sampled returns a running container's last sample, sampling it now
// (walk included) only if the collector has none yet.
func (c *statsCollector) sampled(ctr *store.Container, pod *store.Pod) *ctrSample {
	return c.containerNoOlderThan(ctr, pod, 0)
}

// containerNoOlderThan returns the cached sample, sampled now with a walk
// if there is none, or its counters re-read if older than maxAge (0: any
// age will do).
func (c *statsCollector) containerNoOlderThan(ctr *store.Container, pod *store.Pod, maxAge time.Duration) *ctrSample {
	c.mu.Lock()
	old := c.ctrs[ctr.ID]
	var cp ctrSample
	if old != nil {
		cp = *old
	}
	c.mu.Unlock()
	switch {
	case old == nil:
		return c.sampleContainer(ctr, pod, true)
	case maxAge > 0 && time.Since(cp.at) > maxAge:
		return c.sampleContainer(ctr, pod, false)
	}
	return &cp
}

// sampleNetwork reads the counters of a pod's interfaces in its network
// namespace; a host-network pod has none of its own.
func (c *statsCollector) sampleNetwork(pod *store.Pod) *podNetSample {
	if pod.NetNS == "" || !netns.IsPinned(pod.NetNS) {
		return nil
	}
	var data []byte
	err := netns.Do(pod.NetNS, func() error {
		// /proc/net/dev follows the thread group's leader; the file of
		// this very thread, which Do moved into the pod's namespace, is
		// /proc/thread-self/net/dev.
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	})
	if err != nil {
		c.s.log.WithError(err).Debugf("stats: pod %s network", pod.ID)
		return nil
	}
	ifaces, err := parseNetDev(string(data))
	if err != nil {
		c.s.log.WithError(err).Debugf("stats: pod %s network", pod.ID)
		return nil
	}
	smp := &podNetSample{at: time.Now(), ifaces: ifaces}
	c.mu.Lock()
	c.nets[pod.ID] = smp
	c.mu.Unlock()
	return smp
}

// network returns a pod's network sample, read now if there is none yet.
func (c *statsCollector) network(pod *store.Pod) *podNetSample {
	c.mu.Lock()
	smp := c.nets[pod.ID]
	c.mu.Unlock()
	if smp == nil {
		return c.sampleNetwork(pod)
	}
	return smp
}

// cpuRate is the CPU use between two readings of a cumulative counter, in
// nanocores (1e9 is one core busy). A counter that went back (a new
// cgroup under the same name) or readings not in time order give no rate.
func cpuRate(prevNanos uint64, prevAt time.Time, curNanos uint64, curAt time.Time) (uint64, bool) {
	if prevAt.IsZero() || !curAt.After(prevAt) || curNanos < prevNanos {
		return 0, false
	}
	dt := curAt.Sub(prevAt)
	// In floating point: the product of a CPU delta and 1e9 overflows
	// uint64 past 18 CPU-seconds.
	r := float64(curNanos-prevNanos) * 1e9 / float64(dt.Nanoseconds())
	if r >= math.MaxUint64 {
		return math.MaxUint64, true
	}
	return uint64(r), true
}

// containerCgroup is the cgroup path (relative to each hierarchy's root) of
// a container: the cgroupsPath itself with cgroupfs; with systemd, the
// scope's place below its slice's ancestors.
func containerCgroup(driver, parent, id string) (string, error) {
	p, err := cgroups.ContainerPath(driver, parent, id)
	if err != nil || driver != cgroups.DriverSystemd {
		return p, err
	}
	parts := strings.SplitN(p, ":", 3)
	return path.Join(expandSlice(parts[0]), parts[1]+"-"+parts[2]+".scope"), nil
}

// expandSlice turns a slice name into its cgroup path, the way systemd
// nests slices: "a-b.slice" is /a.slice/a-b.slice.
func expandSlice(slice string) string {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "-" || name == "" {
		return "/"
	}
	p := "/"
	prefix := ""
	for _, part := range strings.Split(name, "-") {
		if prefix != "" {
			prefix += "-"
		}
		prefix += part
		p = path.Join(p, prefix+".slice")
	}
	return p
}

// dirUsage sums the disk blocks and counts the inodes under dir, each hard
// linked inode once. Entries that vanish during the walk are skipped: the
// container keeps writing while it is measured.
func dirUsage(dir string) (writableLayer, error) {
	var u writableLayer
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			u.bytes += uint64(info.Size())
			u.inodes++
			return nil
		}
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		u.bytes += uint64(st.Blocks) * 512
		u.inodes++
		return nil
	})
	return u, err
}
