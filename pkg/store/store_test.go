package store

import (
	"errors"
	"path/filepath"
	"testing"
)

type rec struct {
	Name string
	N    int
}

func TestPutGetDeleteAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, "things")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error {
		if err := tx.Put("things", "a", rec{"a", 1}); err != nil {
			return err
		}
		return tx.Put("things", "b", rec{"b", 2})
	}); err != nil {
		t.Fatal(err)
	}
	// A failing transaction must leave nothing behind.
	boom := errors.New("boom")
	if err := s.Update(func(tx *Tx) error {
		if err := tx.Put("things", "c", rec{"c", 3}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	s.Close()

	s, err = Open(path, "things")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got rec
	if err := s.View(func(tx *Tx) error { return tx.Get("things", "b", &got) }); err != nil || got.N != 2 {
		t.Fatalf("get b after reopen: %+v %v", got, err)
	}
	if err := s.View(func(tx *Tx) error { return tx.Get("things", "c", &got) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rolled-back record visible: %v", err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Delete("things", "a") }); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := s.View(func(tx *Tx) error {
		return All(tx, "things", func(k string, r *rec) error { names = append(names, r.Name); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "b" {
		t.Fatalf("after delete: %v", names)
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a second open of a held store succeeded")
	}
}

func TestVolatileStoreKeepsCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pods.db")
	s, err := OpenVolatile(path, "things")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("things", "a", rec{"a", 1}) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenVolatile(path, "things")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got rec
	if err := s.View(func(tx *Tx) error { return tx.Get("things", "a", &got) }); err != nil || got.N != 1 {
		t.Fatalf("commit lost: %+v %v", got, err)
	}
}
