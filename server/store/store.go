package store

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/berth-runtime/berth/pkg/store"
)

const (
	bucketPods       = "pods"
	bucketContainers = "containers"
)

// Buckets lists the state-store buckets this package uses.
var Buckets = []string{bucketPods, bucketContainers}

// ErrNotFound: no pod or container has that ID (or unique ID prefix).
var ErrNotFound = errors.New("not found")

// ErrNameReserved: another pod or container already holds the name.
var ErrNameReserved = errors.New("name is reserved")

// Store holds pods and containers. Writes go to the state store first,
// then to memory, so memory never shows what a crash would lose.
type Store struct {
	db *store.Store

	mu         sync.RWMutex
	pods       map[string]*Pod
	containers map[string]*Container
	names      map[string]string // reserved name -> id
}

// Open loads every record.
func Open(db *store.Store) (*Store, error) {
	s := &Store{db: db, pods: map[string]*Pod{}, containers: map[string]*Container{}, names: map[string]string{}}
	err := db.View(func(tx *store.Tx) error {
		if err := store.All(tx, bucketPods, func(id string, p *Pod) error {
			s.pods[id] = p
			s.names["pod:"+p.Name] = id
			return nil
		}); err != nil {
			return err
		}
		return store.All(tx, bucketContainers, func(id string, c *Container) error {
			s.containers[id] = c
			s.names["ctr:"+c.Name] = id
			return nil
		})
	})
	return s, err
}

// ReservePod records a new pod; it fails with ErrNameReserved when a pod
// with the same name exists.
func (s *Store) ReservePod(p *Pod) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.names["pod:"+p.Name]; ok {
		return fmt.Errorf("pod name %q is reserved by pod %s: %w", p.Name, id, ErrNameReserved)
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(bucketPods, p.ID, p) }); err != nil {
		return err
	}
	cp := *p
	s.pods[p.ID] = &cp
	s.names["pod:"+p.Name] = p.ID
	return nil
}

// UpdatePod changes a pod record with fn, atomically on disk and in
// memory. fn gets a copy; returning an error changes nothing.
func (s *Store) UpdatePod(id string, fn func(*Pod) error) (*Pod, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.pods[id]
	if !ok {
		return nil, fmt.Errorf("pod %s: %w", id, ErrNotFound)
	}
	next := *cur
	if err := fn(&next); err != nil {
		return nil, err
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(bucketPods, id, &next) }); err != nil {
		return nil, err
	}
	s.pods[id] = &next
	cp := next
	return &cp, nil
}

// DeletePod forgets a pod and frees its name.
func (s *Store) DeletePod(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pods[id]
	if !ok {
		return nil
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Delete(bucketPods, id) }); err != nil {
		return err
	}
	delete(s.pods, id)
	delete(s.names, "pod:"+p.Name)
	return nil
}

// Pod returns a copy of the pod with this ID or unique ID prefix.
func (s *Store) Pod(id string) (*Pod, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, err := byPrefix(s.pods, id, "pod")
	if err != nil {
		return nil, err
	}
	cp := *p
	return &cp, nil
}

// Pods returns copies of every pod, oldest first.
func (s *Store) Pods() []*Pod {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Pod, 0, len(s.pods))
	for _, p := range s.pods {
		cp := *p
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// ReserveContainer records a new container under a free name.
func (s *Store) ReserveContainer(c *Container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.names["ctr:"+c.Name]; ok {
		return fmt.Errorf("container name %q is reserved by container %s: %w", c.Name, id, ErrNameReserved)
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(bucketContainers, c.ID, c) }); err != nil {
		return err
	}
	cp := *c
	s.containers[c.ID] = &cp
	s.names["ctr:"+c.Name] = c.ID
	return nil
}

// UpdateContainer changes a container record with fn.
func (s *Store) UpdateContainer(id string, fn func(*Container) error) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	next := *cur
	if err := fn(&next); err != nil {
		return nil, err
	}
	if reflect.DeepEqual(*cur, next) {
		// Status polls mostly change nothing; a write (and its fsync)
		// per poll would dominate their cost.
		cp := next
		return &cp, nil
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Put(bucketContainers, id, &next) }); err != nil {
		return nil, err
	}
	s.containers[id] = &next
	cp := next
	return &cp, nil
}

// DeleteContainer forgets a container and frees its name.
func (s *Store) DeleteContainer(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil
	}
	if err := s.db.Update(func(tx *store.Tx) error { return tx.Delete(bucketContainers, id) }); err != nil {
		return err
	}
	delete(s.containers, id)
	delete(s.names, "ctr:"+c.Name)
	return nil
}

// Container returns a copy of the container with this ID or unique prefix.
func (s *Store) Container(id string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, err := byPrefix(s.containers, id, "container")
	if err != nil {
		return nil, err
	}
	cp := *c
	return &cp, nil
}

// Containers returns copies of every container, oldest first; with a pod
// ID, only that pod's.
func (s *Store) Containers(podID string) []*Container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Container, 0, len(s.containers))
	for _, c := range s.containers {
		if podID == "" || c.PodID == podID {
			cp := *c
			out = append(out, &cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// byPrefix finds a record by full ID or by a unique prefix, as crictl
// users type short IDs.
func byPrefix[T any](m map[string]*T, id, kind string) (*T, error) {
	if id == "" {
		return nil, fmt.Errorf("%s ID is empty: %w", kind, ErrNotFound)
	}
	if v, ok := m[id]; ok {
		return v, nil
	}
	var found *T
	for k, v := range m {
		if strings.HasPrefix(k, id) {
			if found != nil {
				return nil, fmt.Errorf("%s ID prefix %q matches more than one %s: %w", kind, id, kind, ErrNotFound)
			}
			found = v
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
	}
	return found, nil
}
