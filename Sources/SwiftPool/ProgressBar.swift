#if canImport(Glibc)
import Glibc
#endif

/// The text of a progress bar, drawn to a file descriptor: redrawn in place on a
/// terminal (carriage return, erase line), one plain line per report elsewhere.
final class ProgressBar: @unchecked Sendable {
    let label: String
    let fd: Int32
    let isTerminal: Bool
    private let monitor = Monitor()

    init(label: String, fd: Int32) {
        self.label = label
        self.fd = fd
        isTerminal = isatty(fd) == 1
    }

    func draw(_ p: MapProgress) {
        let line = Self.render(p, label: label, barWidth: isTerminal ? 24 : 0)
        let ended = p.total.map { p.done >= $0 } ?? false
        let text = isTerminal ? "\r\u{1B}[2K" + line + (ended ? "\n" : "") : line + "\n"
        let bytes = Array(text.utf8)
        monitor.withLock {
            var at = 0
            while at < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + at, $0.count - at) }
                if n <= 0 { break }
                at += n
            }
        }
    }

    /// `label  45% |██████░░░░| 90,000/200,000 [0:02<0:03, 41.2k/s, 3 failed]`; the bar
    /// only when `barWidth` > 0 and the total is known.
    static func render(_ p: MapProgress, label: String, barWidth: Int) -> String {
        var parts: [String] = []
        if !label.isEmpty { parts.append(label) }
        if let f = p.fractionDone {
            parts.append(String(repeating: " ", count: max(0, 3 - String(Int(f * 100)).count)) + "\(Int(f * 100))%")
            if barWidth > 0 {
                let filled = min(barWidth, Int((f * Double(barWidth)).rounded(.down)))
                parts.append("|" + String(repeating: "█", count: filled) +
                             String(repeating: "░", count: barWidth - filled) + "|")
            }
        }
        parts.append(p.total.map { "\(grouped(p.done))/\(grouped($0))" } ?? grouped(p.done))
        var timing = clock(p.elapsed)
        if let left = p.estimatedRemaining, p.total.map({ p.done < $0 }) ?? false { timing += "<" + clock(left) }
        timing += ", " + rate(p.tasksPerSecond)
        if p.failed > 0 { timing += ", \(grouped(p.failed)) failed" }
        parts.append("[" + timing + "]")
        return parts.joined(separator: " ")
    }

    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }

    static func clock(_ d: Duration) -> String {
        let total = Int(d.seconds.rounded(.down))
        let (h, m, s) = (total / 3600, total / 60 % 60, total % 60)
        let two = { (v: Int) in v < 10 ? "0\(v)" : "\(v)" }
        return h > 0 ? "\(h):\(two(m)):\(two(s))" : "\(m):\(two(s))"
    }

    static func rate(_ perSecond: Double) -> String {
        switch perSecond {
        case 1e6...: return "\(tenths(perSecond / 1e6))M/s"
        case 1e3...: return "\(tenths(perSecond / 1e3))k/s"
        default: return "\(tenths(perSecond))/s"
        }
    }

    private static func tenths(_ v: Double) -> String {
        let t = Int((v * 10).rounded())
        return "\(t / 10).\(t % 10)"
    }
}
