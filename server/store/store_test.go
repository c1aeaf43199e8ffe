package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-runtime/berth/pkg/store"
)

func openStore(t *testing.T, path string) (*store.Store, *Store) {
	t.Helper()
	db, err := store.Open(path, Buckets...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	return db, s
}

func TestPodsAndContainersSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, s := openStore(t, path)
	now := time.Now()
	if err := s.ReservePod(&Pod{ID: "aaa111", Name: "p_ns_uid_0", Phase: PodCreating, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReservePod(&Pod{ID: "bbb222", Name: "p_ns_uid_0"}); !errors.Is(err, ErrNameReserved) {
		t.Fatalf("duplicate pod name: %v", err)
	}
	if _, err := s.UpdatePod("aaa111", func(p *Pod) error { p.Phase = PodReady; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveContainer(&Container{ID: "ccc333", PodID: "aaa111", Name: "c_p_ns_uid_0", State: ContainerCreated, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateContainer("ccc333", func(c *Container) error { return errors.New("refused") }); err == nil {
		t.Fatal("an update whose func failed succeeded")
	}
	db.Close()

	db, s = openStore(t, path)
	defer db.Close()
	p, err := s.Pod("aaa")
	if err != nil || p.Phase != PodReady {
		t.Fatalf("pod by prefix after reopen: %+v %v", p, err)
	}
	c, err := s.Container("ccc333")
	if err != nil || c.State != ContainerCreated || c.PodID != "aaa111" {
		t.Fatalf("container after reopen: %+v %v", c, err)
	}
	if got := s.Containers("aaa111"); len(got) != 1 {
		t.Fatalf("containers of the pod: %d", len(got))
	}
	if err := s.DeleteContainer("ccc333"); err != nil {
		t.Fatal(err)
	}
	// The freed name can be taken again.
	if err := s.ReserveContainer(&Container{ID: "ddd444", PodID: "aaa111", Name: "c_p_ns_uid_0"}); err != nil {
		t.Fatalf("name not freed: %v", err)
	}
	if _, err := s.Container("zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown container: %v", err)
	}
	if err := s.ReservePod(&Pod{ID: "aab", Name: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pod("aa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ambiguous prefix resolved: %v", err)
	}
}
