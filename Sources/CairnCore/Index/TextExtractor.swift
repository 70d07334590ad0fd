import Foundation
import Glibc
import Synchronization

/// The text of a file for the full-text index, and what kind of file it was.
struct ExtractedText {
    enum Format: String {
        /// Text as it is: plain text, Markdown, source code, JSON, CSV.
        case text
        /// HTML: the text between the tags.
        case html
        /// PDF, through `pdftotext`.
        case pdf
        /// Not text (a NUL byte, or not UTF-8): not indexed.
        case binary
        /// A PDF while `pdftotext` is not installed: not indexed, and `cairn index status` says so.
        case pdfSkipped = "pdf-skipped"
        /// A PDF `pdftotext` could not read.
        case unreadable
    }

    var format: Format
    var text: String

    /// The most of a file's bytes read for the index: beyond, a file is indexed by its beginning.
    static let maximumBytes = 8 << 20

    /// Extracts the text of `bytes` (a file's content, perhaps only its first `maximumBytes`)
    /// named `name`.
    static func extract(_ bytes: [UInt8], name: String) -> ExtractedText {
        if bytes.starts(with: Array("%PDF-".utf8)) { return pdf(bytes) }
        guard !bytes.contains(0), let text = decodeUTF8(bytes) else { return ExtractedText(format: .binary, text: "") }
        let lower = name.lowercased()
        if lower.hasSuffix(".html") || lower.hasSuffix(".htm") || looksLikeHTML(bytes) {
            return ExtractedText(format: .html, text: HTMLText.strip(text))
        }
        return ExtractedText(format: .text, text: text)
    }

    /// UTF-8, allowing a multi-byte character cut at the end (a file read up to a limit).
    private static func decodeUTF8(_ bytes: [UInt8]) -> String? {
        for cut in 0...min(3, bytes.count) {
            if let text = String(validating: bytes[..<(bytes.count - cut)], as: UTF8.self) { return text }
            if bytes.count < maximumBytes { return nil }
        }
        return nil
    }

    private static func looksLikeHTML(_ bytes: [UInt8]) -> Bool {
        let head = String(decoding: bytes.prefix(512), as: UTF8.self).lowercased()
        let trimmed = head.drop { $0.isWhitespace }
        return trimmed.hasPrefix("<!doctype html") || trimmed.hasPrefix("<html")
    }

    /// Where `pdftotext` is, if it is installed.
    static let pdftotext: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin"] {
            let candidate = "\(directory)/pdftotext"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }()

    /// The longest `pdftotext` may take on one file before it is killed (a PDF can make it loop).
    static let pdfTimeout: Double = 30

    private static func pdf(_ bytes: [UInt8]) -> ExtractedText {
        guard let tool = pdftotext else { return ExtractedText(format: .pdfSkipped, text: "") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-q", "-enc", "UTF-8", "-", "-"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            return ExtractedText(format: .unreadable, text: "")
        }
        // Fed from another thread (the tool may fill its output before it has read all), with a
        // call that reports a closed pipe instead of trapping on it.
        let feeder = Thread {
            try? input.fileHandleForWriting.write(contentsOf: Data(bytes))
            try? input.fileHandleForWriting.close()
        }
        feeder.start()
        // Read up to the limit; more than that is not indexed, and the tool is stopped.
        let collected = Mutex(Data())
        let reading = DispatchSemaphore(value: 0)
        let reader = Thread {
            while collected.withLock({ $0.count }) < maximumBytes,
                let chunk = try? output.fileHandleForReading.read(upToCount: 1 << 16), !chunk.isEmpty
            {
                collected.withLock { $0.append(chunk) }
            }
            reading.signal()
        }
        reader.start()
        let finished = reading.wait(timeout: .now() + pdfTimeout) == .success
        let text = collected.withLock { $0 }
        let capped = text.count >= maximumBytes
        if !finished || capped { process.terminate() }
        if exited.wait(timeout: .now() + 5) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            exited.wait()
        }
        if !finished { reading.wait() }  // the pipe's writer is gone: the read ends
        try? output.fileHandleForReading.close()
        guard finished, capped || (process.terminationReason == .exit && process.terminationStatus == 0) else {
            return ExtractedText(format: .unreadable, text: "")
        }
        return ExtractedText(format: .pdf, text: String(decoding: text.prefix(maximumBytes), as: UTF8.self))
    }
}

/// The readable text of an HTML document: tags, comments, scripts and styles removed, the
/// common entities decoded.
enum HTMLText {
    /// One pass over the bytes (a page of many comments or scripts costs no more than its size).
    static func strip(_ html: String) -> String {
        let bytes = Array(html.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count / 2)
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "<") else {
                out.append(bytes[i])
                i += 1
                continue
            }
            if starts(bytes, at: i, with: "<!--") {
                i = find("-->", in: bytes, from: i + 4).map { $0 + 3 } ?? bytes.count
                continue
            }
            for element in ["script", "style"] where starts(bytes, at: i, with: "<" + element) {
                i = find("</" + element, in: bytes, from: i + 1) ?? bytes.count
            }
            guard let close = bytes[i...].firstIndex(of: UInt8(ascii: ">")) else { break }
            i = close + 1
            out.append(UInt8(ascii: " "))
        }
        return decodeEntities(String(decoding: out, as: UTF8.self))
    }

    /// Whether `bytes` has `text` (ASCII, any case) at `index`.
    private static func starts(_ bytes: [UInt8], at index: Int, with text: String) -> Bool {
        let needle = Array(text.utf8)
        guard index + needle.count <= bytes.count else { return false }
        for (k, byte) in needle.enumerated() where lower(bytes[index + k]) != byte { return false }
        return true
    }

    /// Where `text` (ASCII, any case) next begins in `bytes` from `index`.
    private static func find(_ text: String, in bytes: [UInt8], from index: Int) -> Int? {
        guard let first = text.utf8.first else { return index }
        var i = index
        while i < bytes.count {
            if lower(bytes[i]) == first, starts(bytes, at: i, with: text) { return i }
            i += 1
        }
        return nil
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    private static let entities = [
        "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#39;": "'", "&apos;": "'", "&nbsp;": " ",
    ]

    private static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = text
        for (entity, character) in entities { out = out.replacingOccurrences(of: entity, with: character) }
        return out
    }
}
