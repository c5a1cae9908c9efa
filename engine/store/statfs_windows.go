package store

import "golang.org/x/sys/windows"

// statfs returns the bytes free for the caller and the size of the volume
// holding dir.
func statfs(dir string) (free, total uint64, err error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, 0, err
	}
	err = windows.GetDiskFreeSpaceEx(p, &free, &total, nil)
	return free, total, err
}
