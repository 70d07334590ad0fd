import Foundation
import Glibc

/// A moment of a workspace's history as a person names it: a seq (`@1234`), an ISO-8601 time
/// (`2026-11-26T10:00:00Z`, with an offset, or local time without one; seconds and the time of
/// day may be left out), or a time relative to now (`-90s`, `-30m`, `-2h`, `-3d`, `-1w`).
public enum PointInTime: Sendable, Equatable {
    case seq(Int64)
    case time(Timestamp)

    /// Parses `text`; relative forms count back from `now`.
    public init(_ text: String, now: Timestamp = .now()) throws(FSError) {
        if text.hasPrefix("@") {
            guard let seq = Int64(text.dropFirst()), seq >= 0 else { throw Self.invalid(text) }
            self = .seq(seq)
        } else if text.hasPrefix("-"), let unit = text.last, let amount = Int64(text.dropFirst().dropLast()),
            amount >= 0, let seconds = Self.unitSeconds[unit]
        {
            let (back, overflow) = amount.multipliedReportingOverflow(by: seconds * 1_000_000_000)
            guard !overflow else { throw Self.invalid(text) }
            self = .time(Timestamp(nanoseconds: now.nanoseconds - min(back, now.nanoseconds)))
        } else if let time = Self.parseISO(text) {
            self = .time(time)
        } else {
            throw Self.invalid(text)
        }
    }

    private static let unitSeconds: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    private static func invalid(_ text: String) -> FSError {
        .invalidArgument(
            "'\(text)' is not a point in time; use @SEQ, an ISO-8601 time such as 2026-11-26T10:00:00Z "
                + "(local time without the Z), or -30m, -2h, -3d")
    }

    /// ISO-8601 date and time: `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH[:]MM]`.
    private static func parseISO(_ text: String) -> Timestamp? {
        var body = Substring(text)
        var offsetSeconds: Int?
        if body.hasSuffix("Z") {
            offsetSeconds = 0
            body = body.dropLast()
        } else if body.count > 16, let sign = body.dropFirst(16).lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let zone = body[body.index(after: sign)...].filter { $0 != ":" }
            guard zone.count == 4, let hh = Int(zone.prefix(2)), let mm = Int(zone.suffix(2)) else { return nil }
            offsetSeconds = (body[sign] == "-" ? -1 : 1) * (hh * 3600 + mm * 60)
            body = body[..<sign]
        }
        var fraction: Int64 = 0
        if let dot = body.firstIndex(of: ".") {
            let digits = body[body.index(after: dot)...]
            guard !digits.isEmpty, digits.count <= 9, let value = Int64(digits) else { return nil }
            fraction = value * Int64(pow(10, Double(9 - digits.count)))
            body = body[..<dot]
        }
        // Digits at fixed places: YYYY-MM-DD, then THH:MM and :SS.
        let chars = Array(body.replacingOccurrences(of: " ", with: "T"))
        func number(_ from: Int, _ count: Int) -> Int32? {
            guard chars.count >= from + count else { return nil }
            return Int32(String(chars[from..<(from + count)]))
        }
        guard [10, 16, 19].contains(chars.count), chars[4] == "-", chars[7] == "-",
            let year = number(0, 4), let month = number(5, 2), let day = number(8, 2)
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        if chars.count > 10 {
            guard chars[10] == "T", chars[13] == ":", let hour = number(11, 2), let minute = number(14, 2) else {
                return nil
            }
            parts.tm_hour = hour
            parts.tm_min = minute
            if chars.count == 19 {
                guard chars[16] == ":", let second = number(17, 2) else { return nil }
                parts.tm_sec = second
            }
        }
        guard (1...12).contains(month), (1...31).contains(day), parts.tm_hour < 24, parts.tm_min < 60,
            parts.tm_sec < 61
        else { return nil }
        let seconds: Int
        if let offsetSeconds {
            seconds = timegm(&parts) - offsetSeconds
        } else {
            parts.tm_isdst = -1
            seconds = mktime(&parts)
        }
        return Timestamp(seconds: seconds, nanoseconds: Int(fraction))
    }
}
