package host

import (
	"os"
	"slices"
	"testing"
)

func TestReadAndDevices(t *testing.T) {
	f, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && !slices.Contains(f.Capabilities, "CAP_CHOWN") {
		t.Fatalf("root without CAP_CHOWN in its bounding set? %v", f.Capabilities)
	}
	if f.MaxNoFile == 0 {
		t.Fatal("no open-files limit read")
	}
	d, err := DeviceInfo("/dev/null")
	if err != nil || d.Type != 'c' || d.Major != 1 || d.Minor != 3 {
		t.Fatalf("/dev/null: %+v %v", d, err)
	}
	devs, err := ListDevices("/dev")
	if err != nil || len(devs) == 0 {
		t.Fatalf("no devices under /dev: %v", err)
	}
}
