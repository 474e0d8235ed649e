package config

import "golang.org/x/sys/unix"

// dirOpenFlags opens a directory on the way to a checked file: O_PATH
// (open(2)) needs only search permission, so a directory the running user
// may traverse but not list (mode 0711) can still be checked with fstat.
const dirOpenFlags = unix.O_PATH

// pathOpenFlags opens a command checked by CheckExecutable: O_PATH needs no
// read permission, and fstat works on the descriptor.
const pathOpenFlags = unix.O_PATH
