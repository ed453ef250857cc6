package supervisor

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseExitMap parses one FROM:TO exit status mapping (ExitMap), both
// numbers from 0 to 255: "143:0".
func ParseExitMap(spec string) (from, to int, err error) {
	f, t, ok := strings.Cut(spec, ":")
	if !ok {
		return 0, 0, fmt.Errorf("exit map %q: want FROM:TO, like 143:0", spec)
	}
	if from, err = exitStatus(f); err == nil {
		to, err = exitStatus(t)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("exit map %q: %w", spec, err)
	}
	return from, to, nil
}

func exitStatus(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("%q is not an exit status from 0 to 255", strings.TrimSpace(s))
	}
	return n, nil
}

// exitCode is spotinit's exit status: the child's, after ExitMap. It logs
// the mapping when one applies; Run asks once.
func (s *run) exitCode() int {
	code := s.exit.Code()
	to, ok := s.cfg.ExitMap[code]
	if !ok || to == code {
		return code
	}
	s.log.Info("exit status mapped", "from", code, "to", to)
	return to
}
