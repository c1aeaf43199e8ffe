// Package version holds berth's version, set at link time by the Makefile.
package version

// Version is overridden with -ldflags "-X .../pkg/version.Version=...".
var Version = "0.1.0-dev"

// CRIVersion is the CRI API version berthd serves.
const CRIVersion = "v1"
