package reports

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Nepal's fiscal year runs from 1 Shrawan to the end of Ashadh of the
// next Bikram Sambat (BS) year; its quarters are Shrawan-Ashwin,
// Kartik-Poush, Magh-Chaitra and Baishakh-Ashadh. BS month lengths vary
// from year to year and follow no formula, so they come from a table.

// bsAnchor is 1 Baishakh of bsFirst, in the Gregorian calendar.
const bsFirst = 2078

var bsAnchor = time.Date(2021, 4, 14, 0, 0, 0, 0, time.UTC)

// bsMonths are the month lengths (Baishakh..Chaitra) of BS 2078-2083, as
// published calendar tables give them. BS 2082 onward are published
// projections: check them against the official calendar.
var bsMonths = [][12]int{
	{31, 31, 31, 32, 31, 31, 30, 29, 30, 29, 30, 30}, // 2078
	{31, 31, 32, 31, 31, 31, 30, 29, 30, 29, 30, 30}, // 2079
	{31, 32, 31, 32, 31, 30, 30, 30, 29, 29, 30, 30}, // 2080
	{31, 31, 32, 32, 31, 30, 30, 30, 29, 30, 30, 30}, // 2081
	{31, 32, 31, 32, 31, 30, 30, 30, 29, 30, 30, 30}, // 2082
	{31, 31, 32, 31, 31, 30, 30, 30, 29, 30, 30, 30}, // 2083
}

// bsMonthStart returns 1 <month> <year> BS (month 1 = Baishakh) as a
// Gregorian date (midnight UTC), ok false outside the table.
func bsMonthStart(year, month int) (time.Time, bool) {
	for month > 12 {
		year, month = year+1, month-12
	}
	if year < bsFirst || year >= bsFirst+len(bsMonths) || month < 1 {
		return time.Time{}, false
	}
	days := 0
	for y := bsFirst; y < year; y++ {
		for _, d := range bsMonths[y-bsFirst] {
			days += d
		}
	}
	for m := 1; m < month; m++ {
		days += bsMonths[year-bsFirst][m-1]
	}
	return bsAnchor.AddDate(0, 0, days), true
}

// FiscalPeriod is a Nepali fiscal year or one of its quarters.
type FiscalPeriod struct {
	Label    string    // "FY 2081/82" or "FY 2081/82 Q1 (Shrawan-Ashwin)"
	From, To time.Time // Gregorian dates (midnight, in the report's zone); To exclusive
}

var quarterNames = []string{"Shrawan-Ashwin", "Kartik-Poush", "Magh-Chaitra", "Baishakh-Ashadh"}

// ParseFiscalPeriod reads "2081/82" or "2081" (the fiscal year starting in
// BS 2081) with an optional quarter suffix "-q1".."-q4" ("fy" prefix
// allowed), and returns its dates at midnight in loc.
func ParseFiscalPeriod(v string, loc *time.Location) (FiscalPeriod, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimPrefix(s, "fy")
	s = strings.TrimSpace(s)
	q := 0
	if i := strings.Index(s, "-q"); i >= 0 {
		n, err := strconv.Atoi(s[i+2:])
		if err != nil || n < 1 || n > 4 {
			return FiscalPeriod{}, fmt.Errorf("fiscal period %q: the quarter is q1 to q4", v)
		}
		q, s = n, s[:i]
	}
	ys, _, _ := strings.Cut(s, "/")
	y, err := strconv.Atoi(ys)
	if err != nil {
		return FiscalPeriod{}, fmt.Errorf("fiscal period %q: want a Bikram Sambat fiscal year such as 2081/82, optionally with -q1..-q4", v)
	}
	// Shrawan is month 4; quarters start at months 4, 7, 10, 13.
	startM, endM := 4, 16
	if q > 0 {
		startM, endM = 4+3*(q-1), 7+3*(q-1)
	}
	from, ok1 := bsMonthStart(y, startM)
	to, ok2 := bsMonthStart(y, endM)
	if !ok1 || !ok2 {
		return FiscalPeriod{}, fmt.Errorf("fiscal period %q: the calendar table covers fiscal years %d/%02d to %d/%02d",
			v, bsFirst, (bsFirst+1)%100, bsFirst+len(bsMonths)-2, (bsFirst+len(bsMonths)-1)%100)
	}
	label := fmt.Sprintf("FY %d/%02d", y, (y+1)%100)
	if q > 0 {
		label += fmt.Sprintf(" Q%d (%s)", q, quarterNames[q-1])
	}
	at := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc) }
	return FiscalPeriod{Label: label, From: at(from), To: at(to)}, nil
}
