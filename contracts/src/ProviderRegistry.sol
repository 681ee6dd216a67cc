// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IProviderRegistry} from "./interfaces/IProviderRegistry.sol";
import {Errors} from "./libraries/Errors.sol";

/// @title ProviderRegistry
/// @notice See {IProviderRegistry}. Permissionless: any account may register; what a provider can earn is
/// decided by the offers that name it, and joining an offer's terms needs the provider's own consent.
contract ProviderRegistry is IProviderRegistry {
    /// @inheritdoc IProviderRegistry
    uint32 public providerCount;

    mapping(uint32 providerId => Provider) private _providers;

    /// @inheritdoc IProviderRegistry
    mapping(address account => uint32 providerId) public idOf;

    /// @inheritdoc IProviderRegistry
    function register(Role role, address payout, uint32 regions, bool gdpr) external returns (uint32 providerId) {
        if (idOf[msg.sender] != 0) revert Errors.Registry_AlreadyRegistered(msg.sender, idOf[msg.sender]);
        _requireValid(payout, regions);
        providerId = ++providerCount;
        idOf[msg.sender] = providerId;
        _providers[providerId] =
            Provider({account: msg.sender, role: role, active: true, gdpr: gdpr, regions: regions, payout: payout});
        emit ProviderRegistered(providerId, msg.sender, role, payout, regions, gdpr);
    }

    /// @inheritdoc IProviderRegistry
    function update(address payout, uint32 regions, bool gdpr) external {
        _requireValid(payout, regions);
        // A provider that left may update too: it keeps earning under terms still open and must keep control
        // of where that money goes (its regions and GDPR declaration no longer matter: it joins no new terms).
        uint32 providerId = idOf[msg.sender];
        if (providerId == 0) revert Errors.Registry_NotRegistered(msg.sender);
        Provider storage provider = _providers[providerId];
        provider.payout = payout;
        provider.regions = regions;
        provider.gdpr = gdpr;
        emit ProviderUpdated(providerId, payout, regions, gdpr);
    }

    /// @inheritdoc IProviderRegistry
    function deregister() external {
        uint32 providerId = _activeIdOf(msg.sender);
        _providers[providerId].active = false;
        emit ProviderLeft(providerId);
    }

    /// @inheritdoc IProviderRegistry
    function providerOf(uint32 providerId) external view returns (Provider memory provider) {
        provider = _providers[providerId];
        if (provider.account == address(0)) revert Errors.Registry_UnknownProvider(providerId);
    }

    /// @inheritdoc IProviderRegistry
    function isActive(uint32 providerId) external view returns (bool) {
        return _providers[providerId].active;
    }

    function _activeIdOf(address account) private view returns (uint32 providerId) {
        providerId = idOf[account];
        if (providerId == 0 || !_providers[providerId].active) revert Errors.Registry_NotActiveProvider(account);
    }

    function _requireValid(address payout, uint32 regions) private pure {
        if (payout == address(0) || regions == 0) revert Errors.Registry_InvalidProvider(payout, regions);
    }
}
