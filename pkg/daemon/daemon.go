// Package daemon runs berthd: it takes the root, opens the store, serves
// CRI on the socket and handles signals.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/berth-runtime/berth/cgroups"
	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/oci/host"
	"github.com/berth-runtime/berth/pkg/admin"
	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/logging"
	"github.com/berth-runtime/berth/pkg/network"
	"github.com/berth-runtime/berth/pkg/store"
	"github.com/berth-runtime/berth/pkg/version"
	"github.com/berth-runtime/berth/server"
	podstore "github.com/berth-runtime/berth/server/store"
)

// Options are what the command line adds to the config.
type Options struct {
	ConfigPath string
	// Reload re-reads the config file with the same flag overrides.
	Reload func() (config.Config, error)
}

// Run serves until SIGTERM or SIGINT, then drains and returns nil.
func Run(cfg config.Config, opts Options) error {
	log := logrus.WithField("component", "berthd")
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return fmt.Errorf("root %s: %w", cfg.Root, err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("state dir %s: %w", cfg.StateDir, err)
	}
	lock, err := lockRoot(cfg.Root)
	if err != nil {
		return err
	}
	defer lock.Close()

	switch {
	case cfg.Runtime.DaemonCgroup == "":
	case os.Getenv("INVOCATION_ID") != "":
		// Under systemd the unit's cgroup is berthd's own already, and
		// systemd accounts and stops the service by it.
		log.Debugf("started by systemd: staying in the unit's cgroup, not %s", cfg.Runtime.DaemonCgroup)
	default:
		// Started from a shell, berthd would sit in that shell's cgroups
		// (even someone else's memory cgroup); it takes its own.
		if err := cgroups.Place(cfg.Runtime.DaemonCgroup, os.Getpid()); err != nil {
			return fmt.Errorf("runtime.daemon_cgroup: %w", err)
		}
	}
	db, err := store.Open(filepath.Join(cfg.Root, "berth.db"), images.Buckets...)
	if err != nil {
		return err
	}
	defer db.Close()
	// Pods and containers are runtime state: they end with the node, so
	// their records live under state_dir, unsynced (see OpenVolatile).
	podDB, err := store.OpenVolatile(filepath.Join(cfg.StateDir, "pods.db"), podstore.Buckets...)
	if err != nil {
		return err
	}
	defer podDB.Close()

	imgs, err := images.New(cfg.Root, db, cfg, logrus.WithField("component", "images"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	pods, err := podstore.Open(podDB)
	if err != nil {
		return fmt.Errorf("pod store: %w", err)
	}
	netw, err := network.New(network.Config{
		ConfDir:    cfg.Network.ConfDir,
		PluginDirs: cfg.Network.PluginDirs,
		CacheDir:   filepath.Join(cfg.StateDir, "cni"),
		Log:        logrus.WithField("component", "cni"),
	})
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	facts, err := host.Read()
	if err != nil {
		return fmt.Errorf("reading the node: %w", err)
	}
	shimPath, err := findBinary(cfg.Runtime.ShimPath, "berth-shim", "runtime.shim_path")
	if err != nil {
		return err
	}
	runtimePath, err := findBinary(cfg.Runtime.RuntimePath, "berth-runtime", "runtime.runtime_path")
	if err != nil {
		return err
	}
	holderPath, err := findBinary(cfg.Runtime.PIDHolderPath, "berth-pidns-holder", "runtime.pidns_holder_path")
	if err != nil {
		return err
	}
	mtr, err := newMetrics(cfg, imgs)
	if err != nil {
		return err
	}
	cri := server.New(cfg, server.Deps{Images: imgs, Store: pods, Network: netw, Facts: facts, ShimPath: shimPath, RuntimePath: runtimePath, PIDHolderPath: holderPath, Metrics: mtr}, log)
	defer cri.Close()
	cri.Recover(context.Background())
	if err := cri.StartStreaming(); err != nil {
		return fmt.Errorf("streaming server on %s: %w", cfg.Stream.Address, err)
	}
	defer cri.StopStreaming()

	lis, err := listenUnix(cfg.Socket)
	if err != nil {
		return err
	}
	g := grpc.NewServer(append(server.Interceptors(logrus.WithField("component", "cri"), mtr), grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))...)
	cri.Register(g)
	admin.Register(g, func(ctx context.Context, path string) ([]admin.Imported, error) {
		got, err := imgs.ImportFile(ctx, path)
		out := make([]admin.Imported, 0, len(got))
		for _, img := range got {
			out = append(out, admin.Imported{ID: img.ID, RepoTags: img.RepoTags})
		}
		return out, err
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dir := cfg.ImportPath(); dir != "" {
		if err := imgs.WatchImportDir(ctx, dir); err != nil {
			log.WithError(err).Warn("image import dir disabled")
		}
	}

	metricsEndpoint, err := serveMetrics(cfg, mtr, cri, logrus.WithField("component", "metrics"))
	if err != nil {
		return err
	}
	if metricsEndpoint != nil {
		defer metricsEndpoint.Close()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- g.Serve(lis) }()
	log.Infof("berthd %s serving CRI on %s (root %s, state %s)", version.Version, cfg.Socket, cfg.Root, cfg.StateDir)
	if ok, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady); err != nil {
		log.WithError(err).Warn("notifying systemd")
	} else if ok {
		log.Debug("told systemd we are ready")
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-serveErr:
			if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("serving CRI: %w", err)
			}
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(log, opts, imgs, netw)
				continue
			}
			log.Infof("%s: stopping", sig)
			sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
			// Long-lived streams end first, so the graceful stop waits only
			// for calls that finish on their own.
			cri.Close()
			stopGracefully(g, cfg.ShutdownTimeout.D(), log)
			os.Remove(cfg.Socket)
			return nil
		}
	}
}

// stopGracefully stops accepting calls and lets those in flight finish,
// for at most timeout.
func stopGracefully(g *grpc.Server, timeout time.Duration, log *logrus.Entry) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		log.Warnf("RPCs still running after %s; closing them", timeout)
		g.Stop()
	}
}

// reload applies what can change live: log level, registries and the node
// auth file. Other changes need a restart; it says which.
func reload(log *logrus.Entry, opts Options, imgs *images.Service, netw *network.Manager) {
	if opts.Reload == nil {
		return
	}
	next, err := opts.Reload()
	if err != nil {
		log.WithError(err).Error("SIGHUP: config not reloaded")
		return
	}
	if err := imgs.Reload(next); err != nil {
		log.WithError(err).Error("SIGHUP: registries not reloaded")
		return
	}
	if err := logging.SetLevel(next.LogLevel); err != nil {
		log.WithError(err).Error("SIGHUP: log level not reloaded")
	}
	if err := netw.Reload(); err != nil {
		log.WithError(err).Warn("SIGHUP: CNI config not reloaded")
	}
	hosts := make([]string, 0, len(next.Registries))
	for h := range next.Registries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	log.Infof("SIGHUP: reloaded log_level=%s, registries=[%s], auth_file=%s", next.LogLevel, strings.Join(hosts, " "), next.Image.AuthFile)
}

// findBinary locates one of berth's binaries: the path configured under
// key, else name beside berthd.
func findBinary(configured, name, key string) (string, error) {
	p := configured
	if p == "" {
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		p = filepath.Join(filepath.Dir(self), name)
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return p, nil
}
