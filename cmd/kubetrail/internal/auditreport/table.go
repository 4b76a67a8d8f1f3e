package auditreport

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// table writes rows of cells in aligned columns: the first leftAligned columns to the
// left (names), the others to the right (numbers). Cells are never cut: a long user
// name widens its column rather than lose the characters that tell users apart.
type table struct {
	leftAligned int
	rows        [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w *bufio.Writer) {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range t.rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < t.leftAligned {
				line.WriteString(c)
				if i < len(r)-1 {
					line.WriteString(pad)
				}
			} else {
				line.WriteString(pad)
				line.WriteString(c)
			}
		}
		line.WriteByte('\n')
		w.WriteString(line.String())
	}
}

// ms formats a duration in milliseconds with about three significant digits; "-" when
// there is none.
func ms(v float64, ok bool) string {
	switch {
	case !ok:
		return "-"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func percent(n, total int) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 1, 64) + "%"
}

// rate is n per second over the span; "-" when the span has no length.
func rate(n int, seconds float64) string {
	if seconds <= 0 {
		return "-"
	}
	r := float64(n) / seconds
	if r < 10 {
		return strconv.FormatFloat(r, 'f', 3, 64)
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}

func flush(w *bufio.Writer, what string) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	return nil
}

func newWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 32<<10) }
