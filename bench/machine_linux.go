package bench

import "syscall"

// uname returns the kernel release and version (uname -r, uname -v).
func uname() (release, version string) {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "", ""
	}
	return charsToString(u.Release[:]), charsToString(u.Version[:])
}

func charsToString[T int8 | uint8](cs []T) string {
	b := make([]byte, 0, len(cs))
	for _, c := range cs {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
