package server

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSELinuxOptionList(t *testing.T) {
	got := selinuxOptionList(&runtimeapi.SELinuxOption{User: "system_u", Type: "spc_t", Level: "s0:c1,c2"})
	if want := []string{"user:system_u", "type:spc_t", "level:s0:c1,c2"}; !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if got := selinuxOptionList(nil); len(got) != 0 {
		t.Fatalf("nil options: %v", got)
	}
}
