package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-runtime/berth/test/mountinfo"
)

// unmountUnder unmounts everything at or below dir. A mount that will not
// go is detached instead, so that removing dir cannot descend into a
// filesystem that is still mounted.
func unmountUnder(dir string) error {
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		mps := mountinfo.Under(string(b), dir)
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			fmt.Fprintf(os.Stderr, "bench: unmounting %s\n", mp)
			if err := unix.Unmount(mp, 0); err != nil {
				if err2 := unix.Unmount(mp, unix.MNT_DETACH); err2 != nil {
					errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err2))
				}
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	if left := mountinfo.Under(string(b), dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	return nil
}
