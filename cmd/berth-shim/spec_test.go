package main

import (
	"encoding/json"
	"slices"
	"testing"
)

// An exec'd process is the container's process with its args, env and
// terminal replaced; every other field stays as the spec has it.
func TestExecProcessJSON(t *testing.T) {
	raw := `{"terminal":true,"consoleSize":{"height":1,"width":2},"user":{"uid":7,"gid":8,"additionalGids":[9]},` +
		`"args":["sh"],"env":["A=1"],"cwd":"/w","capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true,"apparmorProfile":"p"}`
	p := &ctrProcess{raw: json.RawMessage(raw)}
	b, err := p.execProcessJSON([]string{"ls", "-l"}, []string{"B=2"}, false, 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Terminal    bool            `json:"terminal"`
		ConsoleSize json.RawMessage `json:"consoleSize"`
		User        struct {
			UID  int   `json:"uid"`
			Gids []int `json:"additionalGids"`
		} `json:"user"`
		Args []string `json:"args"`
		Env  []string `json:"env"`
		Cwd  string   `json:"cwd"`
		Caps struct {
			Bounding []string `json:"bounding"`
		} `json:"capabilities"`
		NNP      bool   `json:"noNewPrivileges"`
		AppArmor string `json:"apparmorProfile"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Terminal || got.ConsoleSize != nil || !slices.Equal(got.Args, []string{"ls", "-l"}) || !slices.Equal(got.Env, []string{"B=2"}) {
		t.Errorf("changed fields: %s", b)
	}
	if got.User.UID != 7 || !slices.Equal(got.User.Gids, []int{9}) || got.Cwd != "/w" || got.Caps.Bounding[0] != "CAP_KILL" || !got.NNP || got.AppArmor != "p" {
		t.Errorf("kept fields: %s", b)
	}
	b, _ = p.execProcessJSON([]string{"sh"}, nil, true, 80, 24)
	if err := json.Unmarshal(b, &got); err != nil || !got.Terminal || string(got.ConsoleSize) != `{"height":24,"width":80}` {
		t.Errorf("tty: %s", b)
	}
}
