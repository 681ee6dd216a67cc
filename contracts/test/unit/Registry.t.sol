// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {UnitBase} from "./UnitBase.sol";
import {IConferenceEscrow} from "../../src/interfaces/IConferenceEscrow.sol";
import {IProviderRegistry} from "../../src/interfaces/IProviderRegistry.sol";
import {Errors} from "../../src/libraries/Errors.sol";

contract RegistryTest is UnitBase {
    // ---- register --------------------------------------------------------------------------------

    function test_RevertWhen_RegisterCallerAlreadyRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_AlreadyRegistered.selector, infra, infraId));
        vm.prank(infra);
        registry.register(IProviderRegistry.Role.Other, infraPayout, EU_ONLY, true);
    }

    function test_RevertWhen_RegisterPayoutZero() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_InvalidProvider.selector, address(0), EU_ONLY));
        vm.prank(stranger);
        registry.register(IProviderRegistry.Role.Other, address(0), EU_ONLY, true);
    }

    function test_RevertWhen_RegisterRegionsZero() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_InvalidProvider.selector, stranger, uint32(0)));
        vm.prank(stranger);
        registry.register(IProviderRegistry.Role.Other, stranger, 0, true);
    }

    function test_RevertWhen_RegisterAfterLeaving() public {
        vm.prank(infra);
        registry.deregister();
        // A provider id is never reused: the account keeps its old id.
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_AlreadyRegistered.selector, infra, infraId));
        vm.prank(infra);
        registry.register(IProviderRegistry.Role.Infrastructure, infraPayout, EU_ONLY, true);
    }

    function test_WhenNewAccount_Registers() public {
        vm.expectEmit();
        emit IProviderRegistry.ProviderRegistered(4, stranger, IProviderRegistry.Role.Other, address(0xbeef), 6, false);
        vm.prank(stranger);
        uint32 id = registry.register(IProviderRegistry.Role.Other, address(0xbeef), 6, false);

        assertEq(id, 4, "id counts from 1");
        assertEq(registry.providerCount(), 4, "providerCount");
        assertEq(registry.idOf(stranger), 4, "idOf");
        IProviderRegistry.Provider memory p = registry.providerOf(4);
        assertEq(p.account, stranger, "account");
        assertEq(uint256(p.role), uint256(IProviderRegistry.Role.Other), "role");
        assertEq(p.active, true, "active");
        assertEq(p.gdpr, false, "gdpr");
        assertEq(p.regions, 6, "regions");
        assertEq(p.payout, address(0xbeef), "payout");
    }

    // ---- update ----------------------------------------------------------------------------------

    function test_RevertWhen_UpdatePayoutZero() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_InvalidProvider.selector, address(0), EU_ONLY));
        vm.prank(infra);
        registry.update(address(0), EU_ONLY, true);
    }

    function test_RevertWhen_UpdateRegionsZero() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_InvalidProvider.selector, infraPayout, uint32(0)));
        vm.prank(infra);
        registry.update(infraPayout, 0, true);
    }

    function test_RevertWhen_UpdateCallerNotProvider() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_NotRegistered.selector, stranger));
        vm.prank(stranger);
        registry.update(stranger, EU_ONLY, true);
    }

    /// Regression (review, a provider that left cannot move its payout): it still can, and stays gone.
    function test_WhenProviderLeft_UpdatesPayout() public {
        vm.prank(infra);
        registry.deregister();
        address cold = _account(45, "cold");
        vm.expectEmit();
        emit IProviderRegistry.ProviderUpdated(infraId, cold, EU_ONLY, true);
        vm.prank(infra);
        registry.update(cold, EU_ONLY, true);
        IProviderRegistry.Provider memory p = registry.providerOf(infraId);
        assertEq(p.payout, cold, "payout moved");
        assertEq(p.active, false, "still left");
        assertEq(registry.isActive(infraId), false, "not active");
    }

    function test_WhenActiveProvider_Updates() public {
        vm.expectEmit();
        emit IProviderRegistry.ProviderUpdated(infraId, address(0xcafe), ALL_REGIONS, false);
        vm.prank(infra);
        registry.update(address(0xcafe), ALL_REGIONS, false);

        IProviderRegistry.Provider memory p = registry.providerOf(infraId);
        assertEq(p.payout, address(0xcafe), "payout");
        assertEq(p.regions, ALL_REGIONS, "regions");
        assertEq(p.gdpr, false, "gdpr");
        assertEq(p.account, infra, "account unchanged");
        assertEq(p.active, true, "still active");
    }

    function test_WhenProviderUpdates_PublishedTermsKeepRegionsAndGdpr() public {
        vm.prank(infra);
        registry.update(infraPayout, EU_ONLY, false);

        IConferenceEscrow.Terms memory terms = escrow.termsOf(fixedTerms);
        assertEq(terms.regions, EU_US, "regions as published");
        assertEq(terms.gdpr, true, "gdpr as published");
        // The customer can still require GDPR and the US, at the published terms.
        vm.prank(customer);
        uint256 id = escrow.sign{value: 0.12 ether}(fixedTerms, 0, true);
        vm.prank(operator);
        escrow.activate(id, US);
        assertEq(escrow.agreementOf(id).region, US, "ran in the US");
    }

    // ---- deregister ------------------------------------------------------------------------------

    function test_RevertWhen_DeregisterCallerNotProvider() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_NotActiveProvider.selector, stranger));
        vm.prank(stranger);
        registry.deregister();
    }

    function test_RevertWhen_DeregisterTwice() public {
        vm.prank(monitor);
        registry.deregister();
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_NotActiveProvider.selector, monitor));
        vm.prank(monitor);
        registry.deregister();
    }

    function test_WhenActiveProvider_Deregisters() public {
        vm.expectEmit();
        emit IProviderRegistry.ProviderLeft(monitorId);
        vm.prank(monitor);
        registry.deregister();

        IProviderRegistry.Provider memory p = registry.providerOf(monitorId);
        assertEq(p.active, false, "inactive");
        assertEq(p.payout, monitorPayout, "payout kept");
        assertEq(registry.idOf(monitor), monitorId, "id kept");
        assertEq(registry.providerCount(), 3, "count unchanged");
    }

    // ---- views -----------------------------------------------------------------------------------

    function test_RevertWhen_ProviderOfUnknownId() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_UnknownProvider.selector, uint32(99)));
        registry.providerOf(99);
    }

    function test_RevertWhen_ProviderOfIdZero() public {
        vm.expectRevert(abi.encodeWithSelector(Errors.Registry_UnknownProvider.selector, uint32(0)));
        registry.providerOf(0);
    }

    function test_WhenNeverRegistered_IdOfIsZero() public view {
        assertEq(registry.idOf(stranger), 0, "idOf");
    }
}
