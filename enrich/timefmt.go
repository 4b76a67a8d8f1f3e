package enrich

import "time"

// parseTime reads the RFC 3339 timestamps the apiserver writes
// ("2025-03-04T06:22:18.819232Z", metav1.MicroTime and metav1.Time). The common
// UTC form is decoded by hand (time.Parse costs ~10x more and this runs twice per
// record); anything else falls back to time.Parse.
func parseTime(b []byte) (Time, bool) {
	if len(b) == 0 { // absent (v1beta1 events have no stage times): no error to allocate
		return Time{}, false
	}
	if t, ok := parseUTC(b); ok {
		return t, true
	}
	pt, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return Time{}, false
	}
	return Time{Sec: pt.Unix(), Nsec: int64(pt.Nanosecond())}, true
}

// parseUTC decodes YYYY-MM-DDTHH:MM:SS[.fraction]Z.
func parseUTC(b []byte) (Time, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' ||
		b[13] != ':' || b[16] != ':' {
		return Time{}, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	min, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > 31 || hour > 23 || min > 59 || sec > 60 {
		return Time{}, false
	}
	var nsec int64
	rest := b[19 : len(b)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) == 1 || len(rest) > 10 {
			return Time{}, false
		}
		scale := int64(100000000)
		for _, c := range rest[1:] {
			if c < '0' || c > '9' {
				return Time{}, false
			}
			nsec += int64(c-'0') * scale
			scale /= 10
		}
	}
	days := daysSinceEpoch(year, month, day)
	return Time{Sec: days*86400 + int64(hour*3600+min*60+sec), Nsec: nsec}, true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysSinceEpoch is the proleptic Gregorian day number of y-m-d, 1970-01-01 = 0
// (Howard Hinnant's days_from_civil).
func daysSinceEpoch(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// sub returns a-b in microseconds, the precision the apiserver writes.
func (t Time) sub(u Time) float64 {
	ns := (t.Sec-u.Sec)*int64(time.Second) + (t.Nsec - u.Nsec)
	return float64(ns/1000) / 1000 // milliseconds with microsecond precision
}
