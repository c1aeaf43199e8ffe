// Package spec turns a CRI CreateContainer request, the pod's sandbox
// config and the image config into an OCI runtime spec that libcontainer's
// specconv.CreateLibcontainerConfig accepts.
//
// Everything here is a pure function of its Input: no syscalls and no file
// reads. Whatever needs the host (the image's /etc/passwd, host device
// nodes, a Localhost seccomp profile) comes in through functions and
// interfaces in Input, so the caller decides how to reach it safely and
// tests can inject it. The caller does the effects: it mounts the root
// filesystem, pins namespaces, creates cgroups, computes SELinux labels and
// backs anonymous volumes with directories.
//
// A request error is a *FieldError naming the CRI field at fault; it matches
// ErrInvalid with errors.Is, so the CRI server answers InvalidArgument.
package spec
