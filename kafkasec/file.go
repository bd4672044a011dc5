package kafkasec

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxSettingFileBytes bounds a file a setting names (a secret, a PEM
// bundle): far more than any of them holds.
const MaxSettingFileBytes = 4 << 20

// ReadSettingFile reads the file a setting names: a regular file (a
// symlink to one too) of at most MaxSettingFileBytes. A FIFO or a device
// is refused once opened without blocking: reading one would block the start for
// good (a FIFO without a writer) or read until memory runs out
// (/dev/zero). Errors name the setting.
func ReadSettingFile(setting, path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO without a writer returns at once
	// (and the file is then refused); a regular file reads as usual.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file (%s)", setting, path, fi.Mode().Type())
	}
	if fi.Size() > MaxSettingFileBytes {
		return nil, fmt.Errorf("%s: %s holds %d bytes, more than %d", setting, path, fi.Size(), MaxSettingFileBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSettingFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	if len(b) > MaxSettingFileBytes {
		return nil, fmt.Errorf("%s: %s holds more than %d bytes", setting, path, MaxSettingFileBytes)
	}
	return b, nil
}
