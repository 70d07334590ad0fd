import CairnCore
import Glibc

/// Starting the daemon by re-exec, not fork: fork() after Dispatch threads exist is unsafe.
enum Spawn {
    /// POSIX_SPAWN_SETSID (glibc): the child gets its own session, away from the terminal.
    private static let setsidFlag: Int16 = 0x80

    /// Starts `executable` in a new session with stdin from /dev/null, stdout and stderr appended
    /// to `logPath`, and `readyFD` as its descriptor 3. Returns the child's pid.
    static func detached(executable: String, arguments: [String], readyFD: Int32, logPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, readyFD, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, setsidFlag)
        var cArgs = arguments.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, &cArgs, environ)
        guard rc == 0 else { throw CLIError(message: "cannot start the daemon: \(String(cString: strerror(rc)))") }
        return pid
    }
}
