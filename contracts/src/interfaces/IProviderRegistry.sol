// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IProviderRegistry
/// @notice Who the providers are: the parties that split an offer's income (infrastructure, conference
/// software, monitoring, ...). A provider signs with one account and is paid at another (a cold wallet).
/// @dev A provider id is never reused and never deleted: leaving only stops the provider from joining new
/// offers, proposals and votes. It keeps earning under terms it already belongs to (until the providers vote
/// it out), and keeps control of its payout address ({update}), so that leaving never strands earnings.
interface IProviderRegistry {
    /// @notice What a provider contributes to a conference.
    enum Role {
        Infrastructure,
        ConferenceSoftware,
        Monitoring,
        Other
    }

    /// @notice One registered provider, packed into two storage slots.
    /// @param account The key that acts for the provider (sets price components, votes, withdraws).
    /// @param role What the provider contributes.
    /// @param active False once the provider has left.
    /// @param gdpr Whether the provider declares itself GDPR-compliant.
    /// @param regions Bit i set means the provider serves region i (region numbers are listed in the README).
    /// @param payout Where the provider's income is paid.
    struct Provider {
        address account;
        Role role;
        bool active;
        bool gdpr;
        uint32 regions;
        address payout;
    }

    /// @notice Emitted when an account registers as a provider.
    event ProviderRegistered(
        uint32 indexed providerId, address indexed account, Role role, address payout, uint32 regions, bool gdpr
    );

    /// @notice Emitted when a provider changes its payout address, regions or GDPR declaration.
    event ProviderUpdated(uint32 indexed providerId, address payout, uint32 regions, bool gdpr);

    /// @notice Emitted when a provider leaves.
    event ProviderLeft(uint32 indexed providerId);

    /// @notice Registers the caller as a provider.
    /// @dev Requirements: the caller has no provider id yet; `payout` is not zero; `regions` is not zero.
    /// Emits {ProviderRegistered}.
    /// @return providerId The new provider's id, counting from 1.
    function register(Role role, address payout, uint32 regions, bool gdpr) external returns (uint32 providerId);

    /// @notice Changes the caller's payout address, regions and GDPR declaration. Terms already published, and
    /// proposals already made, keep the regions and GDPR status they were computed with; every withdrawal from
    /// now on goes to the new address. A provider that left may still call it (to move its payout away from
    /// an address that stopped accepting the token, say); its regions and GDPR declaration no longer matter.
    /// @dev Requirements: the caller is a registered provider (active or not); `payout` and `regions` are not
    /// zero. Emits {ProviderUpdated}.
    function update(address payout, uint32 regions, bool gdpr) external;

    /// @notice The caller stops being a provider for new terms. Its earned income stays withdrawable.
    /// @dev Requirements: the caller is an active provider. Emits {ProviderLeft}.
    function deregister() external;

    /// @notice The provider with id `providerId`; reverts if there is none.
    function providerOf(uint32 providerId) external view returns (Provider memory);

    /// @notice Whether `providerId` is registered and has not left (false for an unknown id).
    function isActive(uint32 providerId) external view returns (bool);

    /// @notice The provider id of `account`, or 0 if it never registered.
    function idOf(address account) external view returns (uint32);

    /// @notice The number of providers ever registered (the highest id).
    function providerCount() external view returns (uint32);
}
