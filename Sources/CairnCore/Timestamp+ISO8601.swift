import Glibc

extension Timestamp {
    /// UTC in ISO 8601: `2026-11-26T10:00:00.123Z` (`milliseconds` false: no fraction).
    /// `timeSeparator` "-" makes a file-name-safe form. Formatted by hand: Foundation's
    /// formatter costs tens of microseconds per call, which long listings feel.
    public func iso8601(milliseconds: Bool = true, timeSeparator: String = ":") -> String {
        var seconds = time_t(self.seconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let digits = String(n)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var text =
            pad(parts.tm_year + 1900, 4) + "-" + pad(parts.tm_mon + 1, 2) + "-" + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + timeSeparator + pad(parts.tm_min, 2) + timeSeparator + pad(parts.tm_sec, 2)
        if milliseconds { text += "." + pad(Int32(subsecondNanoseconds / 1_000_000), 3) }
        return text + "Z"
    }
}
