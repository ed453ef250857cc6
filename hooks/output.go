package hooks

import (
	"bufio"
	"errors"
	"io"
)

// maxLine is the longest line copied whole; longer ones are split, so a hook
// printing megabytes without a newline costs no more memory than this.
const maxLine = 16 << 10

// copyLines copies src to dst line by line until src fails (EOF, a read
// deadline, a closed pipe), with one Write per line: prefix, the line, and a
// newline (added where the line was split or the output ended without one).
// Write errors are ignored and reading goes on, so that the hook never
// blocks on a full pipe because the output went away.
func copyLines(dst io.Writer, src io.Reader, prefix string) {
	br := bufio.NewReaderSize(src, maxLine)
	line := make([]byte, 0, len(prefix)+maxLine+1)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			line = append(append(line[:0], prefix...), chunk...)
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			_, _ = dst.Write(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
