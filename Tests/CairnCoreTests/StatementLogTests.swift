import Foundation
import Testing

@testable import CairnCore

/// The redo journal's statement log: a text is written once, later statements name it.
@Suite struct StatementLogTests {
    private let insert = "INSERT INTO events(time_ns, kind, actor) VALUES (?, ?, ?)"
    private let update = "UPDATE inodes SET nlink = nlink + ? WHERE id = ?"

    private func decoded(_ log: StatementLog) throws -> [String] {
        try #require(StatementLog.decode(log.bytes[...])).map { statement in
            statement.sql + " " + statement.arguments.map { "\($0)" }.joined(separator: ",")
        }
    }

    @Test func aTextIsWrittenOnceAndNamedAfterwards() throws {
        var log = StatementLog()
        log.append(insert, key: 1, SQLArguments([.int(5), .text("create"), .text("a")]))
        let once = log.count
        log.append(update, key: 2, SQLArguments([.int(1), .int(7)]))
        log.append(insert, key: 1, SQLArguments([.int(6), .text("write"), .text("a")]))
        #expect(
            try decoded(log) == [
                insert + " integer(5),text(\"create\"),text(\"a\")", update + " integer(1),integer(7)",
                insert + " integer(6),text(\"write\"),text(\"a\")",
            ])
        // The second insert costs its arguments and four bytes, not its text again.
        #expect(log.count - once < insert.utf8.count + update.utf8.count)
        // A piece from the middle names a text it does not hold.
        #expect(StatementLog.decode(log.bytes[once...]) == nil)
    }

    @Test func aTextFirstWrittenByAStatementCutOffIsWrittenAgain() throws {
        var log = StatementLog()
        log.append(insert, key: 1, SQLArguments([.int(1), .text("k"), .text("a")]))
        let kept = log.count
        log.append(update, key: 2, SQLArguments([.int(1), .int(2)]))
        log.truncate(to: kept)
        log.append(update, key: 2, SQLArguments([.int(-1), .int(3)]))
        log.append(update, key: 2, SQLArguments([.int(-1), .int(4)]))
        #expect(
            try decoded(log) == [
                insert + " integer(1),text(\"k\"),text(\"a\")", update + " integer(-1),integer(3)",
                update + " integer(-1),integer(4)",
            ])
        log.removeAll()
        log.append(update, key: 2, SQLArguments([.int(0), .int(5)]))
        #expect(try decoded(log) == [update + " integer(0),integer(5)"])
    }
}
