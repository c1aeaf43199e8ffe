// Package network attaches pod sandboxes to the network through CNI.
//
// The network used is the first loadable configuration in the conf
// directory, in lexical order of the file names (.conf, .conflist, .json),
// like containerd and CRI-O. The parsed configuration is kept and re-read
// only when the directory or one of the files it was chosen from changes, so
// a pod start costs a few stat calls here and the plugins' own time.
//
// ADD results, with the exact configuration and arguments used, are kept by
// libcni in the cache directory; DEL and CHECK use them, so a pod is torn
// down with the configuration it was set up with even after the conf
// directory changed.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/sirupsen/logrus"

	"github.com/berth-runtime/berth/pkg/netns"
)

// IfName is the interface name pods get inside their network namespace.
const IfName = "eth0"

// rollbackTimeout bounds the DEL that undoes a failed ADD. It runs on its
// own context: the ADD may have failed because the caller's deadline passed.
const rollbackTimeout = 2 * time.Minute

// ErrNotReady is returned by Setup when there is no usable network config.
var ErrNotReady = errors.New("network: no CNI network config")

// DefaultPluginDirs are searched when Config.PluginDirs is empty: the CNI
// project's default and Debian's package location.
var DefaultPluginDirs = []string{"/opt/cni/bin", "/usr/lib/cni"}

// Config says where CNI configs and plugins live.
type Config struct {
	// ConfDir holds the network configurations (/etc/cni/net.d).
	ConfDir string
	// PluginDirs are searched in order for plugin binaries.
	PluginDirs []string
	// CacheDir holds libcni's results cache; put it under the daemon's
	// state directory so that it survives restarts.
	CacheDir string
	// Log receives warnings; nil means the standard logger.
	Log *logrus.Entry
}

// PortMapping is a hostPort of a pod, in the form the portmap plugin takes.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // tcp, udp or sctp; empty means tcp
	HostIP        string
}

// PodNetwork names the pod being attached.
type PodNetwork struct {
	ID        string // sandbox ID, the CNI container ID
	Name      string
	Namespace string
	UID       string
	NetNS     string // path of the pinned network namespace
	// PortMappings are passed as the portMappings capability; mappings
	// without a host port are left out.
	PortMappings []PortMapping
}

// Interface is one interface reported by the plugins.
type Interface struct {
	Name    string
	Mac     string
	Sandbox string // netns path; empty for host-side interfaces
}

// Result is what the plugins reported for a pod.
type Result struct {
	// IPs inside the pod, IPv4 first, then IPv6.
	IPs        []net.IP
	Interfaces []Interface
	DNS        *types.DNS // nil when the plugins gave none
	// Raw is the result as JSON; ResultFromRaw turns it back into a Result.
	Raw []byte
}

// Manager runs CNI for pods.
type Manager struct {
	cfg Config
	cni *libcni.CNIConfig
	log *logrus.Entry

	mu     sync.RWMutex
	loaded snapshot
}

// snapshot is one reading of the conf directory.
type snapshot struct {
	dir   fileStamp   // the directory itself
	files []fileStamp // files read, up to and including the chosen one
	list  *libcni.NetworkConfigList
	file  string // file the list came from
	msg   string // why there is no list
}

type fileStamp struct {
	path  string
	mtime time.Time
	size  int64
	ok    bool // the stat succeeded
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{path: path}
	}
	return fileStamp{path: path, mtime: fi.ModTime(), size: fi.Size(), ok: true}
}

// New makes a Manager and reads the conf directory once. A missing or empty
// conf directory is not an error: Ready reports it, and a config written
// later is picked up.
func New(cfg Config) (*Manager, error) {
	if cfg.ConfDir == "" {
		return nil, errors.New("network: no CNI conf dir configured")
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("network: no CNI cache dir configured")
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	m := &Manager{
		cfg: cfg,
		cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, cfg.CacheDir, nil),
		log: log,
	}
	m.loaded = m.read()
	return m, nil
}

// Ready reports whether a network config is loadable, and if not, why.
func (m *Manager) Ready() (bool, string) {
	s := m.current()
	if s.list == nil {
		return false, s.msg
	}
	return true, ""
}

// NetworkName returns the name of the network pods are attached to, and the
// file it came from; empty when none is loadable.
func (m *Manager) NetworkName() (name, file string) {
	s := m.current()
	if s.list == nil {
		return "", ""
	}
	return s.list.Name, s.file
}

// Reload re-reads the conf directory now. It returns the reason when no
// config is loadable.
func (m *Manager) Reload() error {
	s := m.read()
	m.mu.Lock()
	m.loaded = s
	m.mu.Unlock()
	if s.list == nil {
		return errors.New(s.msg)
	}
	return nil
}

// current returns the loaded snapshot, re-reading the conf directory first if
// it or a file the snapshot was chosen from changed.
func (m *Manager) current() snapshot {
	m.mu.RLock()
	s := m.loaded
	m.mu.RUnlock()
	if !s.stale() {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded.stale() {
		m.loaded = m.read()
	}
	return m.loaded
}

func (s *snapshot) stale() bool {
	if !stamp(s.dir.path).same(s.dir) {
		return true
	}
	for _, f := range s.files {
		if !stamp(f.path).same(f) {
			return true
		}
	}
	return false
}

func (a fileStamp) same(b fileStamp) bool {
	return a.ok == b.ok && a.size == b.size && a.mtime.Equal(b.mtime)
}

// read loads the first usable config of the conf directory.
func (m *Manager) read() snapshot {
	dir := m.cfg.ConfDir
	s := snapshot{dir: stamp(dir)}
	files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		s.msg = fmt.Sprintf("cannot read CNI config dir %s: %v", dir, err)
		return s
	}
	sort.Strings(files)
	var problems []string
	for _, f := range files {
		// Stamp before reading: a write racing with the read then shows
		// as a change on the next call.
		s.files = append(s.files, stamp(f))
		list, err := loadFile(f)
		if err != nil {
			problems = append(problems, err.Error())
			m.log.WithError(err).Warn("skipping CNI network config")
			continue
		}
		s.list, s.file = list, f
		return s
	}
	s.msg = "no CNI network config found in " + dir
	if len(problems) > 0 {
		s.msg += " (" + strings.Join(problems, "; ") + ")"
	}
	return s
}

// loadFile parses a network config list, or a single-plugin config, which
// it turns into a list of one.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var list *libcni.NetworkConfigList
	if _, ok := probe["plugins"]; ok {
		// From the file, not the bytes: a list may take further plugins
		// from a directory named after it.
		list, err = libcni.NetworkConfFromFile(path)
	} else {
		var conf *libcni.PluginConfig
		if conf, err = libcni.NetworkPluginConfFromBytes(data); err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if list.Name == "" {
		return nil, fmt.Errorf("%s: network has no name", path)
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("%s: no plugins", path)
	}
	return list, nil
}

// runtimeConf builds the per-pod arguments shared by ADD, CHECK and DEL.
func runtimeConf(pod PodNetwork, netnsPath string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.ID,
		NetNS:       netnsPath,
		IfName:      IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.ID},
			{"K8S_POD_UID", pod.UID},
		},
	}
	var pm []map[string]interface{}
	for _, p := range pod.PortMappings {
		if p.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		m := map[string]interface{}{
			"hostPort":      p.HostPort,
			"containerPort": p.ContainerPort,
			"protocol":      proto,
		}
		if p.HostIP != "" {
			m["hostIP"] = p.HostIP
		}
		pm = append(pm, m)
	}
	if len(pm) > 0 {
		rt.CapabilityArgs = map[string]interface{}{"portMappings": pm}
	}
	return rt
}

// Setup brings up the loopback interface in the pod's network namespace and
// runs CNI ADD for the pod. If ADD fails part way, DEL undoes what the
// plugins that ran did (IP lease, veth, iptables rules), and the ADD error
// is returned.
func (m *Manager) Setup(ctx context.Context, pod PodNetwork) (*Result, error) {
	if pod.ID == "" || pod.NetNS == "" {
		return nil, errors.New("network: setup needs a pod ID and a netns path")
	}
	s := m.current()
	if s.list == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotReady, s.msg)
	}
	// CRI runtimes bring up the pod's loopback themselves (containerd with
	// a separate loopback network, CRI-O directly); one ioctl here.
	if err := netns.SetLoopbackUp(pod.NetNS); err != nil {
		return nil, fmt.Errorf("network: pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	rt := runtimeConf(pod, pod.NetNS)
	res, err := m.cni.AddNetworkList(ctx, pluginsFor(s.list, pod), rt)
	if err != nil {
		err = fmt.Errorf("network: CNI ADD of pod %s/%s to %q: %w", pod.Namespace, pod.Name, s.list.Name, err)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if derr := m.del(dctx, s.list, rt); derr != nil {
			err = errors.Join(err, fmt.Errorf("network: undoing the failed ADD: %w", derr))
		}
		return nil, err
	}
	out, err := convertResult(res)
	if err != nil {
		// The pod is attached but its result unusable: detach it rather
		// than leak a lease nobody knows about.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if derr := m.del(dctx, s.list, rt); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("network: CNI ADD of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return out, nil
}

// Teardown runs CNI DEL for the pod, with the configuration and arguments
// cached at ADD when there are any. It succeeds when nothing is set up, and
// when the netns is gone: DEL then gets no netns path, as the CNI spec
// allows, and plugins release what lives outside it (IP leases, host rules).
func (m *Manager) Teardown(ctx context.Context, pod PodNetwork) error {
	if pod.ID == "" {
		return errors.New("network: teardown needs a pod ID")
	}
	path := pod.NetNS
	if !netns.IsPinned(path) {
		path = ""
	}
	rt := runtimeConf(pod, path)
	list, crt, err := m.cached(rt)
	if err != nil {
		return err
	}
	if list == nil {
		// Nothing cached: ADD never completed, or DEL already ran. DEL
		// anyway with the current config, since an ADD cut short (a crash
		// of the daemon) leaves state without a cache entry.
		if list = m.current().list; list == nil {
			return nil
		}
		crt = rt
	}
	if err := m.del(ctx, list, crt); err != nil {
		return fmt.Errorf("network: CNI DEL of pod %s/%s from %q: %w", pod.Namespace, pod.Name, list.Name, err)
	}
	return nil
}

// Status runs CNI CHECK for the pod with the cached configuration. Configs
// older than CNI 0.4.0, which have no CHECK, pass.
func (m *Manager) Status(ctx context.Context, pod PodNetwork) error {
	if pod.ID == "" || pod.NetNS == "" {
		return errors.New("network: status needs a pod ID and a netns path")
	}
	rt := runtimeConf(pod, pod.NetNS)
	list, crt, err := m.cached(rt)
	if err != nil {
		return err
	}
	if list == nil {
		return fmt.Errorf("network: pod %s/%s has no network set up", pod.Namespace, pod.Name)
	}
	if err := m.cni.CheckNetworkList(ctx, list, crt); err != nil {
		if errors.Is(err, libcni.ErrorCheckNotSupp) {
			return nil
		}
		return fmt.Errorf("network: CNI CHECK of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// cached finds the config and arguments the pod was set up with. It returns
// a nil list when there is no cache entry.
func (m *Manager) cached(rt *libcni.RuntimeConf) (*libcni.NetworkConfigList, *libcni.RuntimeConf, error) {
	// Usually the network is still the current one: one file read.
	if cur := m.current().list; cur != nil {
		if list, crt := m.cachedFor(cur.Name, rt); list != nil {
			return list, crt, nil
		}
	}
	atts, err := m.cni.GetCachedAttachments(rt.ContainerID)
	if err != nil {
		return nil, nil, fmt.Errorf("network: read CNI cache: %w", err)
	}
	for _, a := range atts {
		if a.IfName != rt.IfName {
			continue
		}
		if list, crt := m.cachedFor(a.Network, rt); list != nil {
			return list, crt, nil
		}
	}
	return nil, nil, nil
}

func (m *Manager) cachedFor(name string, rt *libcni.RuntimeConf) (*libcni.NetworkConfigList, *libcni.RuntimeConf) {
	data, crt, err := m.cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: name}, rt)
	if err != nil || data == nil || crt == nil {
		if err != nil {
			m.log.WithError(err).Warn("unreadable CNI cache entry")
		}
		return nil, nil
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil || len(list.Plugins) == 0 {
		// A list whose plugins came from a directory caches only its
		// top-level bytes; the current config of that name is the best
		// remaining guess.
		if cur := m.current().list; cur != nil && cur.Name == name {
			return cur, crt
		}
		return nil, nil
	}
	return list, crt
}

// del runs DEL with the plugins that are installed. A plugin that is not
// installed has nothing it could undo now, and failing for it forever would
// keep the pod from ever being removed; the others still release what they
// hold. The missing ones are logged.
func (m *Manager) del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	present := list.Plugins[:0:0]
	var missing []string
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.cfg.PluginDirs); err != nil {
			missing = append(missing, p.Network.Type)
			continue
		}
		present = append(present, p)
	}
	if len(missing) > 0 {
		m.log.WithFields(logrus.Fields{"network": list.Name, "container": rt.ContainerID, "plugins": missing}).
			Warn("CNI plugins not installed; skipping their DEL")
		l := *list
		l.Plugins = present
		list = &l
	}
	return m.cni.DelNetworkList(ctx, list, rt)
}

// convertResult turns a plugin result into a Result.
func convertResult(res types.Result) (*Result, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert CNI result: %w", err)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out := &Result{Raw: raw}
	for _, i := range r.Interfaces {
		out.Interfaces = append(out.Interfaces, Interface{Name: i.Name, Mac: i.Mac, Sandbox: i.Sandbox})
	}
	var v4, v6 []net.IP
	for _, ip := range r.IPs {
		if ip == nil || ip.Address.IP == nil {
			continue
		}
		// Addresses on host-side interfaces (a bridge's gateway) are not
		// the pod's.
		if ip.Interface != nil && *ip.Interface >= 0 && *ip.Interface < len(r.Interfaces) &&
			r.Interfaces[*ip.Interface].Sandbox == "" {
			continue
		}
		if v := ip.Address.IP.To4(); v != nil {
			v4 = append(v4, v)
		} else {
			v6 = append(v6, ip.Address.IP)
		}
	}
	out.IPs = append(v4, v6...)
	if !r.DNS.IsEmpty() {
		dns := r.DNS
		out.DNS = &dns
	}
	return out, nil
}

// ResultFromRaw rebuilds a Result from its Raw form, e.g. after a restart.
func ResultFromRaw(raw []byte) (*Result, error) {
	res, err := create.CreateFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("network: parse CNI result: %w", err)
	}
	return convertResult(res)
}
