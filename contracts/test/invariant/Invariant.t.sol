// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IDynamicPriceEscrow} from "../../src/interfaces/IDynamicPriceEscrow.sol";
import {BaseTest} from "../Base.t.sol";
import {Handler} from "./Handler.sol";

/// @notice See README.md beside this file for each invariant in plain words.
contract InvariantTest is BaseTest {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new Handler(escrow, owner, operator);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// The escrow's balance is exactly what it owes: the deposits of agreements not yet finished plus
    /// every account's withdrawable balance.
    function invariant_BalanceEqualsLiabilities() external view {
        uint256 owed;
        for (uint256 i = 0; i < handler.agreementCount(); i++) {
            uint256 id = handler.agreements(i);
            IDynamicPriceEscrow.Status status = escrow.getAgreement(id).status;
            if (
                status == IDynamicPriceEscrow.Status.Signed || status == IDynamicPriceEscrow.Status.Active
                    || status == IDynamicPriceEscrow.Status.Ended
            ) owed += escrow.depositOf(id);
        }
        for (uint256 i = 0; i < handler.customerCount(); i++) {
            owed += escrow.withdrawable(handler.customers(i)) + escrow.withdrawable(handler.providers(i));
        }
        assertEq(address(escrow).balance, owed, "escrow balance == what it owes");
    }

    /// Over every finished agreement: charges + refunds == deposits, to the wei.
    function invariant_ChargePlusRefundEqualsDeposit() external view {
        assertEq(handler.ghostCharges() + handler.ghostRefunds(), handler.ghostDeposits(), "charges + refunds");
    }

    /// An agreement's status only moves forward.
    function invariant_StatusOnlyMovesForward() external view {
        assertTrue(!handler.statusWentBack(), "a status moved back");
    }

    /// No agreement is charged more than the time between its start and its end allows.
    function invariant_EndNeverPassesTheMaximum() external view {
        for (uint256 i = 0; i < handler.agreementCount(); i++) {
            IDynamicPriceEscrow.Agreement memory a = escrow.getAgreement(handler.agreements(i));
            if (a.endedAt != 0) {
                assertTrue(a.endedAt - a.startedAt <= escrow.getOffer(a.offerId).maxDuration, "end within maximum");
            }
        }
    }
}
