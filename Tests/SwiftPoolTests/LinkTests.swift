import Testing
@testable import SwiftPool

@Test func coreVersionIsVisibleFromSwift() {
    #expect(SwiftPoolVersion.major == 0)
}
