// Package unpack turns one image layer, an OCI or Docker layer tar stream,
// into a directory that overlayfs can stack as a lower directory.
//
// Each layer is extracted alone into its own empty directory. Whiteout
// entries are converted to the overlayfs representation as they are met:
// "dir/.wh.NAME" becomes a 0/0 character device "dir/NAME", and
// "dir/.wh..wh..opq" sets the trusted.overlay.opaque="y" xattr on "dir".
//
// # Containment
//
// A layer is untrusted input. Every filesystem operation is made relative
// to a directory file descriptor obtained with openat2(2) and
// RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS from the layer directory, and the
// final path component is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
// O_EXCL creation after unlinking whatever was there). The kernel therefore
// refuses any resolution that would leave the layer directory, whatever
// mix of "..", absolute names and symlinks the tar contains. Such entries
// make Apply fail with an *EscapeError.
//
// Symlink entries themselves are stored verbatim, including absolute
// targets: they are resolved later, inside the container root.
//
// # Failure
//
// Apply stops at the first error and leaves whatever it already wrote in
// the layer directory. Callers extract into a fresh temporary directory
// and remove it on failure; nothing outside that directory is touched.
package unpack
