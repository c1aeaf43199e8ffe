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

	"github.com/berth-runtime/berth/images"
	"github.com/berth-runtime/berth/pkg/admin"
	"github.com/berth-runtime/berth/pkg/config"
	"github.com/berth-runtime/berth/pkg/logging"
	"github.com/berth-runtime/berth/pkg/store"
	"github.com/berth-runtime/berth/pkg/version"
	"github.com/berth-runtime/berth/server"
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

	db, err := store.Open(filepath.Join(cfg.Root, "berth.db"), images.Buckets...)
	if err != nil {
		return err
	}
	defer db.Close()

	imgs, err := images.New(cfg.Root, db, cfg, logrus.WithField("component", "images"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	cri := server.New(cfg, imgs, log)

	lis, err := listenUnix(cfg.Socket)
	if err != nil {
		return err
	}
	g := grpc.NewServer(append(server.Interceptors(logrus.WithField("component", "cri")), grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))...)
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
				reload(log, opts, imgs, cri)
				continue
			}
			log.Infof("%s: stopping", sig)
			sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
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
func reload(log *logrus.Entry, opts Options, imgs *images.Service, cri *server.Server) {
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
	cri.SetConfig(next)
	hosts := make([]string, 0, len(next.Registries))
	for h := range next.Registries {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	log.Infof("SIGHUP: reloaded log_level=%s, registries=[%s], auth_file=%s", next.LogLevel, strings.Join(hosts, " "), next.Image.AuthFile)
}
