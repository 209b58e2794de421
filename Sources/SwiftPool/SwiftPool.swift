internal import CPoolCore

/// Placeholder until the typed API lands: the C core's version, proving the module links.
public enum SwiftPoolVersion {
    public static let major = Int(CPOOL_VERSION_MAJOR)
    public static let minor = Int(CPOOL_VERSION_MINOR)
}
