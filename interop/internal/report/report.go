// Package report formats what the benchmark commands print: rates and the
// versions of the libraries they measure.
package report

import (
	"fmt"
	"runtime/debug"
)

// Rate formats r rounded to a whole number with thousands separated by
// commas: 1234567.8 is "1,234,568".
func Rate(r float64) string {
	s := fmt.Sprint(int64(r + 0.5))
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// ModuleVersion reports the version of the module holding pkg, from the
// binary's build information, in parentheses; "" for no pkg.
func ModuleVersion(pkg string) string {
	if pkg == "" {
		return ""
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(" + pkg + ")"
	}
	for _, m := range bi.Deps {
		if m.Path != pkg {
			continue
		}
		if m.Replace == nil {
			return fmt.Sprintf("(%s %s)", pkg, m.Version)
		}
		if m.Replace.Version == "" || m.Replace.Version == "(devel)" {
			return fmt.Sprintf("(%s, working tree at %s)", pkg, m.Replace.Path)
		}
		return fmt.Sprintf("(%s => %s %s)", pkg, m.Replace.Path, m.Replace.Version)
	}
	return "(" + pkg + ")"
}
