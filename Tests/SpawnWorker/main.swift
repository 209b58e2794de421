// The program the tests' spawned workers run: it defines the same functions as the tests
// (SpawnJobs), then serves. One name only the worker defines with another type than the
// tests, to check that a type mismatch is a clear error.
import SwiftPool
import SwiftPoolSpawnFunctions
#if canImport(Glibc)
import Glibc
#endif

let mismatched = try! PoolFunction.named("spawn.mismatched") { (x: Int) -> String in "\(x)" }
for definition in SpawnJobs.all { _ = definition.definedName }
ProcessPool.serveIfSpawned(mismatched)
print("swiftpool-spawn-worker: run by SwiftPool's tests as a spawned worker only")
exit(2)
