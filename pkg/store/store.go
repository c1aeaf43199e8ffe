// Package store is berthd's crash-safe state: one bbolt file whose
// transactions are atomic, so a kill -9 at any moment leaves either the old
// or the new record, never half of one.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("not found")

// Store wraps the bbolt database. Records are JSON, so a field added later
// reads back as its zero value from an older file.
type Store struct {
	db *bolt.DB
}

// Open opens or creates the database file and the given buckets. A second
// process opening the same file waits at most a second, then fails, which
// keeps two daemons off one root.
func Open(path string, buckets ...string) (*Store, error) {
	return open(path, false, buckets)
}

// OpenVolatile opens a store whose commits are not synced to disk: each
// stays atomic against a crash of the process (the page cache keeps what
// was written, in order) but not against a power loss. It suits state
// that a power loss ends anyway, such as running pods, and saves a disk
// sync on every change.
func OpenVolatile(path string, buckets ...string) (*Store, error) {
	return open(path, true, buckets)
}

func open(path string, noSync bool, buckets []string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Tx is one atomic read-write or read-only transaction.
type Tx struct{ tx *bolt.Tx }

// Update runs fn in one atomic write transaction.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

func (t *Tx) bucket(name string) (*bolt.Bucket, error) {
	b := t.tx.Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("state store: bucket %q missing", name)
	}
	return b, nil
}

// Put stores v as JSON under key.
func (t *Tx) Put(bucket, key string, v any) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state store: encode %s/%s: %w", bucket, key, err)
	}
	return b.Put([]byte(key), data)
}

// Get decodes the record at key into v, or returns ErrNotFound.
func (t *Tx) Get(bucket, key string, v any) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	data := b.Get([]byte(key))
	if data == nil {
		return ErrNotFound
	}
	return json.Unmarshal(data, v)
}

// Delete removes key; a missing key is not an error.
func (t *Tx) Delete(bucket, key string) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete([]byte(key))
}

// ForEach calls fn with every key and its raw JSON value.
func (t *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}

// All decodes every record of a bucket with newT and passes it to fn.
func All[T any](t *Tx, bucket string, fn func(key string, v *T) error) error {
	return t.ForEach(bucket, func(key string, raw []byte) error {
		v := new(T)
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("state store: decode %s/%s: %w", bucket, key, err)
		}
		return fn(key, v)
	})
}
