//go:build !linux

package config

import "golang.org/x/sys/unix"

// dirOpenFlags opens a directory on the way to a checked file. Without
// Linux's O_PATH that needs read permission on the directory.
const dirOpenFlags = unix.O_RDONLY

// pathOpenFlags opens a command checked by CheckExecutable; without O_PATH
// it needs read permission on the file.
const pathOpenFlags = unix.O_RDONLY
