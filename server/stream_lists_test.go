package server

import (
	"slices"
	"testing"
)

func TestSendChunks(t *testing.T) {
	for _, n := range []int{0, 1, streamChunk, streamChunk + 1, 3*streamChunk - 7} {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		var got []int
		msgs := 0
		err := sendChunks(items, func(c []int) *[]int { cp := slices.Clone(c); return &cp }, func(m *[]int) error {
			if len(*m) == 0 || len(*m) > streamChunk {
				t.Fatalf("%d items: a message of %d", n, len(*m))
			}
			msgs++
			got = append(got, *m...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, items) {
			t.Fatalf("%d items: got %d back, in order %v", n, len(got), slices.Equal(got, items))
		}
		if want := (n + streamChunk - 1) / streamChunk; msgs != want {
			t.Fatalf("%d items: %d messages, want %d", n, msgs, want)
		}
	}
}
