// Package settingfile reads the files a service's settings name (secrets,
// certificates, token lists): a regular file, or a symlink to one, of a
// bounded size. A FIFO or a device is refused once opened without
// blocking: reading one would block the start for good (a FIFO without a
// writer) or read until memory runs out (/dev/zero). Errors name the
// setting.
package settingfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxBytes bounds a file Read reads: far more than a secret or a PEM
// bundle holds.
const MaxBytes = 4 << 20

// Read reads the file at path that setting names, at most MaxBytes.
func Read(setting, path string) ([]byte, error) {
	b, _, err := ReadMax(setting, path, MaxBytes)
	return b, err
}

// ReadMax reads the file at path that setting names, at most max bytes,
// and returns its FileInfo too (for a caller that reloads it when it
// changes).
func ReadMax(setting, path string, max int64) ([]byte, fs.FileInfo, error) {
	// O_NONBLOCK: opening a FIFO without a writer returns at once (and
	// the file is then refused); a regular file reads as usual.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %s is not a regular file (%s)", setting, path, fi.Mode().Type())
	}
	if fi.Size() > max {
		return nil, nil, fmt.Errorf("%s: %s holds %d bytes, more than %d", setting, path, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	if int64(len(b)) > max {
		return nil, nil, fmt.Errorf("%s: %s holds more than %d bytes", setting, path, max)
	}
	return b, fi, nil
}
