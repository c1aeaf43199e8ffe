package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-runtime/berth/test/testnet"
	"github.com/berth-runtime/berth/test/testregistry"
)

// containerdShim and runc are what containerd needs to run pods; Debian's
// containerd package ships the shim and depends on runc.
var containerdPodTools = []string{"containerd-shim-runc-v2", "runc"}

// checkPodTools fails early when something the pod benchmark runs is
// missing.
func checkPodTools(berthdBin string) error {
	shim := filepath.Join(filepath.Dir(berthdBin), "berth-shim")
	if _, err := os.Stat(shim); err != nil {
		return fmt.Errorf("berth-shim beside berthd: %w (run `make build`)", err)
	}
	for _, t := range containerdPodTools {
		if _, err := lookPath(t); err != nil {
			return fmt.Errorf("%s: %w (apt-get install -y containerd runc)", t, err)
		}
	}
	return nil
}

// lookPath finds a binary on the daemons' PATH.
func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(envPath) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// containerdShimSockets is where containerd 1.6's shims put their sockets,
// whatever containerd's state dir; the file name is the sha256 of
// "<containerd address>/<namespace>/<id>".
const containerdShimSockets = "/run/containerd/s"

func containerdShimSocket(address, id string) string {
	return filepath.Join(containerdShimSockets, fmt.Sprintf("%x", sha256.Sum256([]byte(filepath.Join(address, "k8s.io", id)))))
}

// runPods runs the pod benchmark and writes its section.
func runPods(ctx context.Context, o options, berthdBin, dir string, reg *testregistry.Registry) (err error) {
	var c cleanups
	defer func() {
		if cerr := c.run(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	mach := machineInfo()
	busybox, pause := reg.Image(podImage), reg.Image(sandboxImage)

	var bd, cd *podRuntime
	everIDs := func() []string {
		var ids []string
		for _, r := range []*podRuntime{bd, cd} {
			if r != nil {
				ids = append(ids, r.ever...)
			}
		}
		return ids
	}

	// Registered in the reverse of the order they run in: pods first
	// (through the daemons), then the daemons, stray shims, cgroups, the
	// runtime's files outside dir, and the network last.
	netw, err := setupPodNetwork(filepath.Join(dir, "cni"))
	if err != nil {
		return err
	}
	c.add("test network", func() error { return netw.close(everIDs()) })
	fmt.Fprintf(os.Stderr, "bench: pod network %s: bridge %s, subnet %s\n", netw.Name, netw.Bridge, netw.Subnet)

	runDirBefore := map[string]bool{}
	for _, d := range []string{"/run/containerd", containerdShimSockets} {
		_, err := os.Stat(d)
		runDirBefore[d] = err == nil
	}
	c.add("containerd shim sockets", func() error {
		if cd == nil {
			return nil
		}
		return removeShimSockets(cd.socket, cd.ever, runDirBefore)
	})

	stopReaping, err := becomeSubreaper()
	if err != nil {
		return err
	}
	c.add("stop reaping", func() error { stopReaping(); return nil })

	for _, rt := range []string{"berthd", "containerd"} {
		if err := prepareBenchCgroups(rt); err != nil {
			return err
		}
	}
	c.add("cgroups", func() error {
		var errs []error
		if bd != nil {
			errs = append(errs, bd.removeShimCgroups())
		}
		errs = append(errs, removeBenchCgroups("berthd", "containerd"))
		return errors.Join(errs...)
	})

	c.add("stray shims", func() error {
		var errs []error
		for _, r := range []*podRuntime{bd, cd} {
			if r == nil {
				continue
			}
			if n, err := r.killStrayShims(); err != nil {
				errs = append(errs, err)
			} else if n > 0 {
				errs = append(errs, fmt.Errorf("%d %s shims were still running after the daemon stopped", n, r.name))
			}
		}
		return errors.Join(errs...)
	})

	seccomp := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	if o.pods.seccomp == "runtime-default" {
		seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	}
	logs := logDirFor(o.logDir, "pods")

	// berthd's state dir must be short (see berthdSettings.stateDir), so
	// it cannot be under the temp dir; it goes, with whatever is mounted
	// below it, once berthd has stopped.
	state := "/run/berth-bench-" + testnet.RandHex(3)
	if err := os.Mkdir(state, 0o711); err != nil {
		return err
	}
	c.add("remove "+state, func() error {
		if err := unmountUnder(state); err != nil {
			return err
		}
		return os.RemoveAll(state)
	})
	b, err := startBerthd(ctx, berthdBin, filepath.Join(dir, "berthd"), berthdSettings{
		stateDir:    state,
		registryURL: reg.URL(),
		confDir:     netw.ConfDir,
		pluginDirs:  []string{cniPluginDir},
		podCgroup:   benchCgroup + "/berthd/pods",
	})
	if b != nil {
		bd = &podRuntime{runtimeUnderTest: b, cgroupName: "berthd", shimExe: "berth-shim", podFlag: "--pod",
			seccomp: seccomp, net: netw, live: map[string]*benchPod{}}
		c.add("stop berthd", func() error { return b.finish(logs) })
	}
	if err != nil {
		return err
	}
	cdr, err := startContainerd(ctx, o.containerd, filepath.Join(dir, "containerd"), containerdSettings{
		registryURL:  reg.URL(),
		sandboxImage: imageRef(pause),
		cniBinDir:    cniPluginDir,
		cniConfDir:   netw.ConfDir,
		cgroups:      true,
	})
	if cdr != nil {
		cd = &podRuntime{runtimeUnderTest: cdr, cgroupName: "containerd", shimExe: "containerd-shim-runc-v2", podFlag: "-id",
			seccomp: seccomp, net: netw, live: map[string]*benchPod{}}
		c.add("stop containerd", func() error { return cdr.finish(logs) })
	}
	if err != nil {
		return err
	}
	rts := []*podRuntime{bd, cd}
	c.add("remove pods", func() error {
		var errs []error
		for _, r := range rts {
			if err := r.removeAllPods(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
			}
		}
		return errors.Join(errs...)
	})

	// Images first, untimed: the container image on both, and containerd's
	// pause image.
	pulls := map[*podRuntime][]testregistry.ImageInfo{bd: {busybox}, cd: {busybox, pause}}
	for _, r := range rts {
		for _, img := range pulls[r] {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			resp, err := r.img.PullImage(pctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: imageRef(img)}})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: PullImage %s: %w", r.name, imageRef(img), err)
			}
			if img.Name == podImage {
				r.imageRef, r.userImage = resp.GetImageRef(), imageRef(img)
			}
		}
		if err := waitNetworkReady(ctx, r); err != nil {
			return err
		}
	}
	if err := cd.checkContactedOnly(reg.Addr()); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}

	results := map[string]*podResult{}
	for _, r := range rts {
		results[r.name] = &podResult{Name: r.name}
	}
	time.Sleep(settle)
	for _, r := range rts {
		m, err := processMemory(r.pid())
		if err != nil {
			return fmt.Errorf("%s memory: %w", r.name, err)
		}
		results[r.name].IdleRSS = m.RSS
		fmt.Fprintf(os.Stderr, "bench: %-10s idle RSS %.1f MiB\n", r.name, mib(m.RSS))
	}

	// 1. Sequential lifecycles, alternating the runtimes (and which goes
	// first) so that noise on the machine falls on both alike.
	seqFrom, _ := fileSize(bd.logPath)
	for i := 0; i < o.pods.lifecycles; i++ {
		order := rts
		if i%2 == 1 {
			order = []*podRuntime{cd, bd}
		}
		for _, r := range order {
			s, err := r.lifecycle(ctx, o.pods)
			if err != nil {
				return fmt.Errorf("%s lifecycle %d: %w", r.name, i+1, err)
			}
			results[r.name].Lifecycles = append(results[r.name].Lifecycles, s)
			fmt.Fprintf(os.Stderr, "bench: %-10s pod %2d/%d  run %4d ms  create %4d ms  start %4d ms  total %4d ms  teardown %4d ms\n",
				r.name, i+1, o.pods.lifecycles, s.Run.Milliseconds(), s.Create.Milliseconds(), s.Start.Milliseconds(),
				s.total().Milliseconds(), s.Teardown.Milliseconds())
		}
		if n := netw.bridgePortsSettled(); n != 0 {
			for _, r := range rts {
				r.problem("%d veth(s) still on the bridge after lifecycle %d", n, i+1)
			}
		}
	}
	seqTo, _ := fileSize(bd.logPath)
	serverSide, err := rpcDurations(bd.logPath, seqFrom, seqTo)
	if err != nil {
		return fmt.Errorf("reading berthd's log: %w", err)
	}

	// 2. Many pods at once, one runtime after the other, for some rounds
	// (each starting with the other runtime): one round is at the mercy of
	// whatever else the machine does meanwhile.
	var burstServer map[string][]time.Duration
	for round := 1; round <= o.pods.rounds; round++ {
		order := rts
		if round%2 == 0 {
			order = []*podRuntime{cd, bd}
		}
		for _, r := range order {
			time.Sleep(settle)
			from, _ := fileSize(bd.logPath)
			fmt.Fprintf(os.Stderr, "bench: %-10s round %d/%d: starting %d pods at once\n", r.name, round, o.pods.rounds, o.pods.burst)
			res, err := r.burst(ctx, o.pods)
			if err != nil {
				return fmt.Errorf("%s, %d pods at once, round %d: %w", r.name, o.pods.burst, round, err)
			}
			if r == bd {
				to, _ := fileSize(bd.logPath)
				d, err := rpcDurations(bd.logPath, from, to)
				if err != nil {
					return fmt.Errorf("reading berthd's log: %w", err)
				}
				burstServer = mergeDurations(burstServer, d)
			}
			results[r.name].Bursts = append(results[r.name].Bursts, res)
			fmt.Fprintf(os.Stderr, "bench: %-10s %d pods running after %d ms; daemon RSS %.1f MiB, %d shims, %.1f MiB RSS / %.1f MiB PSS each; MemAvailable -%.1f MiB per pod; removed in %d ms\n",
				r.name, res.Pods, res.Wall.Milliseconds(), mib(res.DaemonRSS), res.Shims, mib(res.Shim.RSS), mib(res.Shim.PSS),
				mib(res.memPerPod()), res.Removal.Milliseconds())
			if res.Shims != res.Pods {
				r.problem("%d shim processes found for %d pods", res.Shims, res.Pods)
			}
			if n := netw.bridgePortsSettled(); n != 0 {
				r.problem("%d veth(s) still on the bridge after removing the %d pods", n, res.Pods)
			}
		}
	}

	rep := podReport{
		Machine:     mach,
		Date:        time.Now().UTC(),
		Versions:    podVersions(bd, cd),
		Options:     o.pods,
		Image:       busybox,
		Pause:       pause,
		Subnet:      netw.Subnet.String(),
		Results:     []*podResult{results[bd.name], results[cd.name]},
		ServerSeq:   serverSide,
		ServerBurst: burstServer,
	}
	for _, r := range rts {
		rep.Problems = append(rep.Problems, prefixAll(r.name+": ", r.problems)...)
	}
	section := rep.markdown()
	fmt.Println(section)
	if err := writeSection(o.out, "pods", section); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote the pods section of %s\n", o.out)
	return nil
}

// bridgePortsSettled counts the veths on the test bridge once they stop
// disappearing: the kernel frees a removed pod's network namespace, and so
// its veth, in the background.
func (n *podNetwork) bridgePortsSettled() int {
	deadline := time.Now().Add(goneTimeout)
	for {
		p := n.bridgePorts()
		if p == 0 || time.Now().After(deadline) {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNetworkReady waits until the runtime reports NetworkReady: both read
// the CNI config at start, or soon after.
func waitNetworkReady(ctx context.Context, r *podRuntime) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := r.rt.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			return fmt.Errorf("%s: Status: %w", r.name, err)
		}
		var msg string
		for _, c := range st.GetStatus().GetConditions() {
			if c.GetType() == runtimeapi.NetworkReady {
				if c.GetStatus() {
					return nil
				}
				msg = c.GetReason() + ": " + c.GetMessage()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: network not ready after 30s (%s)", r.name, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeShimSockets removes the socket files containerd's shims of ids
// left in /run/containerd/s (a shim that exits cleanly removes its own),
// then the directories if the benchmark made them and they are empty.
func removeShimSockets(address string, ids []string, before map[string]bool) error {
	var errs []error
	for _, id := range ids {
		p := containerdShimSocket(address, id)
		if err := os.Remove(p); err == nil {
			fmt.Fprintf(os.Stderr, "bench: cleanup: removed containerd shim socket %s\n", p)
		} else if !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{containerdShimSockets, "/run/containerd"} {
		if !before[d] {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				if isNotEmpty(err) {
					ents, _ := os.ReadDir(d)
					var names []string
					for _, e := range ents {
						names = append(names, e.Name())
					}
					errs = append(errs, fmt.Errorf("%s was made by this benchmark but is not empty: %s", d, strings.Join(names, ", ")))
				} else {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func mergeDurations(a, b map[string][]time.Duration) map[string][]time.Duration {
	if a == nil {
		a = map[string][]time.Duration{}
	}
	for k, v := range b {
		a[k] = append(a[k], v...)
	}
	return a
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func prefixAll(prefix string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = prefix + s
	}
	return out
}

// podVersions names what ran: both daemons, and what containerd's pods
// depend on (runc, the CNI plugins both use).
func podVersions(bd, cd *podRuntime) map[string]string {
	v := map[string]string{bd.name: bd.version, cd.name: cd.version}
	if out, err := commandOutput("runc", "--version"); err == nil {
		v["runc"] = strings.SplitN(out, "\n", 2)[0]
	}
	if out, err := commandOutput("dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"); err == nil {
		v["cni"] = "containernetworking-plugins " + out
	}
	return v
}
