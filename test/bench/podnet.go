package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-runtime/berth/test/testnet"
)

// cniPluginDir is where Debian's containernetworking-plugins puts the
// plugins; both runtimes get it.
const cniPluginDir = testnet.PluginDir

// podConfFile is the one conflist both runtimes read from ConfDir.
const podConfFile = "10-bench.conflist"

// podNetwork is the pod network both runtimes share for the benchmark: a
// test network (bridge, 10.99.x.0/24, FORWARD rule; see test/testnet) with
// one CNI config, plus what of libcni's default cache existed, which
// containerd writes to and the network itself knows nothing of.
type podNetwork struct {
	*testnet.Env
	cacheBefore map[string]bool // what of /var/lib/cni existed
}

// libcniCache is libcni's default results cache, which containerd 1.6 uses
// (berthd keeps its own under its state dir).
const libcniCache = "/var/lib/cni"

// setupPodNetwork makes the network under dir and writes its conflist. On
// error nothing is left to clean up.
func setupPodNetwork(dir string) (*podNetwork, error) {
	n := &podNetwork{cacheBefore: map[string]bool{}}
	for _, d := range []string{libcniCache, filepath.Join(libcniCache, "results")} {
		_, err := os.Stat(d)
		n.cacheBefore[d] = err == nil
	}
	env, err := testnet.Setup(testnet.Options{Dir: dir, NamePrefix: "berth-bench-", BridgePrefix: "bbench"})
	if err != nil {
		return nil, err
	}
	n.Env = env
	if err := writePodConf(env); err != nil {
		return nil, errors.Join(err, env.Close())
	}
	return n, nil
}

// writePodConf writes the conflist both runtimes read: a bridge with
// hairpin mode and a default route for the pods, without masquerade;
// host-local leases under the benchmark's directory; portmap without
// SNAT; loopback.
func writePodConf(env *testnet.Env) error {
	env.Hairpin, env.DefaultRoute = true, true
	_, err := env.WriteConfFile(podConfFile, testnet.PortmapConf, testnet.LoopbackConf)
	return err
}

// close removes what the network made, including the portmap rules of
// ids, and containerd's cached CNI results of ids. Every step runs even
// when an earlier one fails.
func (n *podNetwork) close(ids []string) error {
	for _, id := range ids {
		n.AddID(id)
	}
	return errors.Join(n.Close(), n.removeCNICache(ids))
}

// bridgePorts counts the interfaces enslaved to the bridge (one veth per
// pod with a network).
func (n *podNetwork) bridgePorts() int {
	c := 0
	for _, l := range strings.Split(n.BridgePorts(), "\n") {
		if strings.TrimSpace(l) != "" {
			c++
		}
	}
	return c
}

// removeCNICache deletes what libcni cached in /var/lib/cni for the
// benchmark's network and containerd's loopback network of ids (DEL removes
// it; a failed DEL does not), then the directories if the benchmark made
// them and they are empty.
func (n *podNetwork) removeCNICache(ids []string) error {
	var errs []error
	results := filepath.Join(libcniCache, "results")
	ents, _ := os.ReadDir(results)
	for _, e := range ents {
		mine := strings.HasPrefix(e.Name(), n.Name+"-")
		for _, id := range ids {
			if strings.HasPrefix(e.Name(), "cni-loopback-"+id+"-") {
				mine = true
			}
		}
		if mine {
			if err := os.Remove(filepath.Join(results, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, d := range []string{results, libcniCache} {
		if !n.cacheBefore[d] {
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) && !isNotEmpty(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
